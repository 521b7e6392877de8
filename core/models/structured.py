"""Structured output that works on every backend we run: OpenAI and the embedded llama.cpp.

Every structured call (plans, agent steps, verdicts, assessments) goes through
``ainvoke_structured``. The method depends on the model:

- ``function_calling`` (OpenAI and the default): a forced call of one tool named after the
  schema, ``with_structured_output(schema, method="function_calling", include_raw=True)``.
- ``json_schema`` (models whose class sets ``structured_output_method = "json_schema"``: the
  embedded llama.cpp server, which ignores a forced named tool call): the server constrains
  decoding to the schema (``response_format`` json_schema), so the reply is schema-valid
  JSON unless it is cut at ``max_tokens``. The model does not see a response format, so the
  schema is also written at the end of the first system message — the stable, cacheable
  part of the prompt.

A bad answer (invalid, cut off, or rejected by ``check``) is shown back to the model with the
error and the call is retried, a bounded number of times. ``Usage`` counts invalid outputs and
repair retries, and ``structured_stats()`` sums them over the process, so an eval can report
them.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLikeRepresentation,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import BaseOutputParser
from langchain_core.outputs import ChatGeneration
from langchain_core.runnables import (
    Runnable,
    RunnableAssign,
    RunnableConfig,
    RunnableParallel,
    RunnableSequence,
    RunnableWithFallbacks,
)
from openai import LengthFinishReasonError
from pydantic import BaseModel, ValidationError

from core.models.schemas import openai_tool
from core.usage import Usage

__all__ = [
    "StructuredOutputError",
    "StructuredResult",
    "StructuredStats",
    "Usage",
    "ainvoke_structured",
    "reset_structured_stats",
    "structured_method",
    "structured_stats",
]

Method = Literal["function_calling", "json_schema"]

M = TypeVar("M", bound=BaseModel)
_SHOWN_CHARS = 2000  # how much of a bad reply is echoed back to the model


@dataclass
class StructuredResult(Generic[M]):
    """A validated structured answer and what it cost."""

    value: M
    """The validated pydantic object."""
    usage: Usage
    """Tokens and calls summed over all attempts."""
    raw: AIMessage
    """The model's last reply (the one that validated)."""
    attempts: int = 1
    """Model calls it took."""
    errors: list[str] = field(default_factory=list)
    """What was wrong with the rejected attempts, in order."""


class StructuredOutputError(RuntimeError):
    """No valid structured output within the allowed attempts; the message says why."""

    def __init__(
        self, message: str, *, errors: list[str], usage: Usage, raw: AIMessage | None
    ) -> None:
        super().__init__(message)
        self.errors = errors
        """The error of each attempt."""
        self.usage = usage
        """Tokens and calls spent anyway (budgets still count them)."""
        self.raw = raw
        """The last reply."""


async def ainvoke_structured(
    model: BaseChatModel,
    schema: type[M],
    messages: str | Sequence[MessageLikeRepresentation],
    *,
    attempts: int = 3,
    config: RunnableConfig | None = None,
    check: Callable[[M], str | None] | None = None,
) -> StructuredResult[M]:
    """Ask ``model`` for a ``schema`` object; retry with the error shown, at most ``attempts``.

    ``check`` adds a semantic check on the validated object (e.g. "unknown agent 'x'"): it
    returns an error message, or None if the object is acceptable; errors are retried too.
    There is no sync twin: every caller is a node or evaluator running on the event loop.
    """
    call = _Call.prepare(model, schema, messages, attempts, check)
    for _ in range(attempts):
        call.before_attempt()
        try:
            out = await call.runnable.ainvoke(call.conversation, config=config)
        except LengthFinishReasonError as err:
            out = _cut_off(err)
        result = call.record(out)
        if result is not None:
            return result
    raise call.failure()


def structured_method(model: BaseChatModel) -> Method:
    """``json_schema`` for models that declare it (the embedded llama.cpp server), else
    ``function_calling``."""
    method = getattr(type(model), "structured_output_method", "function_calling")
    return "json_schema" if method == "json_schema" else "function_calling"


# -- process-wide counters ------------------------------------------------------------------


@dataclass(frozen=True)
class StructuredStats:
    """Structured calls of this process since start (or ``reset_structured_stats``)."""

    calls: int = 0
    """``ainvoke_structured`` calls finished (valid or failed)."""
    failures: int = 0
    """Calls that ended in StructuredOutputError."""
    by_method: dict[str, int] = field(default_factory=dict)
    """Calls per method (``json_schema``, ``function_calling``)."""
    usage: Usage = field(default_factory=Usage)
    """What they spent: model requests, tokens, rejected replies and repair retries."""

    @property
    def model_calls(self) -> int:
        """Model requests the calls made."""
        return self.usage.calls

    @property
    def invalid_outputs(self) -> int:
        """Replies rejected (schema-invalid, cut at max_tokens, or failing ``check``)."""
        return self.usage.invalid_outputs

    @property
    def repair_retries(self) -> int:
        """Requests made again after a rejected reply."""
        return self.usage.repair_retries


_stats_lock = threading.Lock()
_stats = StructuredStats()


def structured_stats() -> StructuredStats:
    """A snapshot of the process-wide counters."""
    with _stats_lock:
        return _stats


def reset_structured_stats() -> StructuredStats:
    """Zero the counters; returns the values they had."""
    global _stats
    with _stats_lock:
        old, _stats = _stats, StructuredStats()
    return old


def _count(method: Method, usage: Usage, failed: bool) -> None:
    global _stats
    with _stats_lock:
        s = _stats
        total = Usage()
        total += s.usage
        total += usage
        _stats = StructuredStats(
            calls=s.calls + 1,
            failures=s.failures + int(failed),
            by_method={**s.by_method, method: s.by_method.get(method, 0) + 1},
            usage=total,
        )


# -- shared steps -----------------------------------------------------------------------


class _CutOff(ValueError):
    """The reply reached max_tokens before the JSON was complete."""


@dataclass
class _Call(Generic[M]):
    """One structured call across its attempts."""

    schema: type[M]
    name: str
    method: Method
    runnable: _Invocable
    conversation: list[BaseMessage]
    check: Callable[[M], str | None] | None
    usage: Usage = field(default_factory=Usage)
    errors: list[str] = field(default_factory=list)
    raw: AIMessage | None = None

    @classmethod
    def prepare(
        cls,
        model: BaseChatModel,
        schema: type[M],
        messages: str | Sequence[MessageLikeRepresentation],
        attempts: int,
        check: Callable[[M], str | None] | None,
    ) -> _Call[M]:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError(f"schema must be a pydantic model class, got {schema!r}")
        conversation = convert_to_messages([messages] if isinstance(messages, str) else messages)
        method = structured_method(model)
        tool, runnable = _structured_runnable(model, schema, method)
        if method == "json_schema":
            conversation = _with_schema(conversation, tool)
        return cls(schema, tool["name"], method, runnable, conversation, check)

    def before_attempt(self) -> None:
        if self.errors:
            self.usage.repair_retries += 1

    def record(self, out: Any) -> StructuredResult[M] | None:
        """Count one reply; the result if it is valid, else None (feedback appended)."""
        self.raw = raw = _raw(out)
        self.usage.add(raw, self.conversation)
        value, error = _evaluate(out, self.schema, self.name, self.check)
        if value is not None:
            _count(self.method, self.usage, failed=False)
            return StructuredResult(value, self.usage, raw, len(self.errors) + 1, self.errors)
        self.errors.append(error)
        self.usage.invalid_outputs += 1
        self.conversation = [
            *self.conversation,
            *_feedback(raw, error, self.name, self.method),
        ]
        return None

    def failure(self) -> StructuredOutputError:
        _count(self.method, self.usage, failed=True)
        return _failure(self.schema, self.errors, self.usage, self.raw)


class _Invocable(Protocol):
    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> Any: ...


class _ForcedToolCall:
    """``with_structured_output(schema, method="function_calling", include_raw=True)`` without
    its chain around the model: the same bound model (the model class's own ``bind_tools``
    arguments) and the same parser, both taken from the chain it built, the same result
    (``{"raw", "parsed", "parsing_error"}``, a parser error caught as the chain's fallback
    does). The chain ran three small synchronous steps through a thread executor and fired
    callbacks for each of its runnables: about 2 ms of CPU per call inside a graph run,
    beside the model call itself, a third of a worker task's orchestration CPU."""

    def __init__(self, llm: Runnable[Any, Any], parser: BaseOutputParser[Any]) -> None:
        self.llm = llm
        self.parser = parser

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        raw = await self.llm.ainvoke(input, config=config)
        try:
            return {"raw": raw, "parsed": self.parser.parse_result([ChatGeneration(message=raw)]),
                    "parsing_error": None}
        except Exception as err:  # what the chain's fallback catches
            return {"raw": raw, "parsed": None, "parsing_error": err}


def _without_chain(chain: Runnable[Any, Any]) -> _Invocable:
    """The chain as ``_ForcedToolCall`` when it has the shape ChatOpenAI and the test model
    build (``RunnableMap(raw=llm) | RunnablePassthrough.assign(parsed=itemgetter("raw") |
    parser, ...).with_fallbacks(...)``); else the chain itself."""
    if not isinstance(chain, RunnableSequence) or len(chain.steps) != 2:
        return chain
    first, last = chain.steps
    steps = first.steps__ if isinstance(first, RunnableParallel) else {}
    assign = last.runnable if isinstance(last, RunnableWithFallbacks) else None
    parsed = assign.mapper.steps__.get("parsed") if isinstance(assign, RunnableAssign) else None
    parser = parsed.last if isinstance(parsed, RunnableSequence) else None
    if list(steps) != ["raw"] or not isinstance(parser, BaseOutputParser):
        return chain
    return _ForcedToolCall(steps["raw"], parser)


_runnables: dict[tuple[int, type, str], tuple[weakref.ref[BaseChatModel], dict[str, Any], _Invocable]] = {}
_runnables_lock = threading.Lock()


def _structured_runnable(
    model: BaseChatModel, schema: type[BaseModel], method: Method
) -> tuple[dict[str, Any], _Invocable]:
    """The schema as a tool and ``model.with_structured_output(schema)``, built once per model
    instance, schema and method: building them converts the schema to JSON schema three
    times (pydantic's generator), about a third of a task's orchestration CPU (the factory
    caches models, so every task of a run hits). The runnable only refers to the model, so
    later changes to the model object are seen."""
    key = (id(model), schema, method)
    hit = _runnables.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1], hit[2]
    tool = openai_tool(schema)["function"]
    chain = model.with_structured_output(schema, method=method, include_raw=True)
    runnable = _without_chain(chain) if method == "function_calling" else chain
    with _runnables_lock:
        if len(_runnables) > 256:
            _runnables.clear()
        _runnables[key] = (weakref.ref(model), tool, runnable)
    return tool, runnable


def _with_schema(conversation: list[BaseMessage], tool: dict[str, Any]) -> list[BaseMessage]:
    """The conversation with the reply's schema at the end of the first system message (or
    in a new one): constrained decoding enforces the schema, this tells the model what the
    fields mean."""
    described = f" ({tool['description']})" if tool.get("description") else ""
    spec = json.dumps(tool.get("parameters", {}), ensure_ascii=False, separators=(",", ":"))
    text = (
        f"Reply with one JSON object {tool['name']}{described} matching this JSON schema:\n{spec}"
    )
    first = conversation[0] if conversation else None
    if isinstance(first, SystemMessage) and isinstance(first.content, str):
        return [SystemMessage(f"{first.content}\n\n{text}"), *conversation[1:]]
    return [SystemMessage(text), *conversation]


def _cut_off(err: LengthFinishReasonError) -> dict[str, Any]:
    """A reply cut at max_tokens, as ``with_structured_output(include_raw=True)`` would
    return it, with its usage, so it is counted and shown back to the model."""
    completion = err.completion
    content = ""
    if completion.choices:
        content = completion.choices[0].message.content or ""
    usage = completion.usage
    metadata = None
    if usage is not None:
        cached = (
            (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
        )
        metadata = UsageMetadata(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            input_token_details={"cache_read": cached},
        )
    raw = AIMessage(
        content=content, usage_metadata=metadata, response_metadata={"finish_reason": "length"}
    )
    n = usage.completion_tokens if usage is not None else "max"
    error = _CutOff(
        f"the reply reached the limit of {n} tokens before the JSON object was complete"
    )
    return {"raw": raw, "parsed": None, "parsing_error": error}


def _raw(out: Any) -> AIMessage:
    raw = out.get("raw") if isinstance(out, dict) else None
    if not isinstance(raw, AIMessage):
        raise TypeError(f"with_structured_output(include_raw=True) returned {type(out).__name__}")
    return raw


def _evaluate(
    out: dict[str, Any], schema: type[M], name: str, check: Callable[[M], str | None] | None
) -> tuple[M | None, str]:
    """The validated (and checked) value, or None and a description of what was wrong."""
    value, error = _validate(out, schema, name)
    if value is not None and check is not None:
        problem = check(value)
        if problem:
            return None, f"the arguments for {name!r} are not acceptable: {problem}"
    return value, error


def _validate(out: dict[str, Any], schema: type[M], name: str) -> tuple[M | None, str]:
    raw: AIMessage = out["raw"]
    parsed, error = out.get("parsed"), out.get("parsing_error")
    if isinstance(parsed, schema) and error is None:
        return parsed, ""
    calls = [tc for tc in raw.tool_calls if tc["name"] == name]
    others = [tc["name"] for tc in raw.tool_calls if tc["name"] != name]
    if others and not calls:
        return None, f"you called {others} but must call the tool {name!r}"
    if raw.invalid_tool_calls and not calls:
        bad = raw.invalid_tool_calls[0]
        return None, (
            f"the arguments of tool call {bad.get('name')!r} are not valid JSON "
            f"({bad.get('error') or 'unparseable'})"
        )
    if error is not None:
        return None, _describe(error, name)
    # No tool call at all. Small local models sometimes answer with the JSON as text
    # (even as {"name": ..., "arguments": ...}); accept it if it validates.
    text = str(raw.text).strip()
    candidate = _json_in_text(text, name)
    if candidate is not None:
        try:
            return schema.model_validate(candidate), ""
        except ValidationError as err:
            return None, _describe(err, name)
    shown = text[:200] + ("…" if len(text) > 200 else "")
    return None, f"no call to the tool {name!r}; the reply was text: {shown!r}"


def _describe(error: BaseException, name: str) -> str:
    if isinstance(error, ValidationError):
        problems = []
        for e in error.errors(include_url=False)[:10]:
            loc = ".".join(str(p) for p in e["loc"]) or "(root)"
            got = json.dumps(e.get("input"), default=str)
            got = got if len(got) <= 80 else got[:77] + "..."
            problems.append(f"{loc}: {e['msg']} (got {got})")
        return f"the arguments for {name!r} do not match its schema: " + "; ".join(problems)
    if isinstance(error, _CutOff):
        return f"{error}; give shorter values"
    # Drop langchain's "For troubleshooting, visit ..." line: noise for the model.
    text = str(error).split("\nFor troubleshooting", 1)[0].strip()
    return f"{type(error).__name__}: {text}"


def _json_in_text(text: str, name: str) -> Any | None:
    text = re.sub(r"</?tool_call>|```(?:json)?", "", text).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and "arguments" in data and data.get("name", name) == name:
        args = data["arguments"]
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        return args
    return data


def _feedback(raw: AIMessage, error: str, name: str, method: Method) -> list[BaseMessage]:
    """The bad reply as plain text plus the error, so every backend accepts the history
    (an assistant tool call would need matching tool messages on OpenAI)."""
    if raw.tool_calls:
        shown = "\n".join(
            json.dumps({"name": tc["name"], "arguments": tc["args"]}) for tc in raw.tool_calls
        )
    elif raw.invalid_tool_calls:
        shown = "\n".join(
            f'{{"name": {json.dumps(tc.get("name"))}, "arguments": {tc.get("args")}}}'
            for tc in raw.invalid_tool_calls
        )
    else:
        shown = str(raw.text) or "(empty reply)"
    if len(shown) > _SHOWN_CHARS:
        shown = shown[:_SHOWN_CHARS] + "…"
    return [
        AIMessage(content=shown),
        HumanMessage(
            content=(
                f"That reply is invalid: {error}.\n"
                + (
                    f"Reply again with one {name} JSON object that satisfies its schema."
                    if method == "json_schema"
                    else f"Call the tool {name!r} again with arguments that satisfy its schema."
                )
            )
        ),
    ]


def _failure(
    schema: type[BaseModel], errors: list[str], usage: Usage, raw: AIMessage | None
) -> StructuredOutputError:
    listed = "\n".join(f"  attempt {i}: {e}" for i, e in enumerate(errors, 1))
    return StructuredOutputError(
        f"no valid {schema.__name__} after {len(errors)} attempt(s); last error: {errors[-1]}\n"
        f"{listed}",
        errors=errors,
        usage=usage,
        raw=raw,
    )
