"""Structured output that works on every backend we run: OpenAI and the embedded llama.cpp.

The llama.cpp server only supports a forced *named* tool call (and rejects a ``json_schema``
response_format), so every structured call goes through
``with_structured_output(schema, method="function_calling", include_raw=True)``. Small
models still get things wrong, so a bad answer is shown back to the model with the error and
the call is retried, a bounded number of times.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLikeRepresentation,
    convert_to_messages,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

__all__ = [
    "StructuredOutputError",
    "StructuredResult",
    "Usage",
    "ainvoke_structured",
    "invoke_structured",
]

M = TypeVar("M", bound=BaseModel)
_SHOWN_CHARS = 2000  # how much of a bad reply is echoed back to the model


@dataclass
class Usage:
    """Tokens and model calls spent, summed over attempts."""

    input_tokens: int = 0
    """Prompt tokens."""
    output_tokens: int = 0
    """Completion tokens."""
    calls: int = 0
    """Model calls made."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, raw: AIMessage, prompt: Sequence[BaseMessage]) -> None:
        """Count one call; estimates tokens when the backend reported no usage."""
        self.calls += 1
        usage = raw.usage_metadata
        if usage:
            self.input_tokens += usage.get("input_tokens", 0)
            self.output_tokens += usage.get("output_tokens", 0)
        else:
            self.input_tokens += count_tokens_approximately(prompt)
            self.output_tokens += count_tokens_approximately([raw])

    def __iadd__(self, other: Usage) -> Usage:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.calls += other.calls
        return self

    def as_metrics(self) -> dict[str, int]:
        """The ``TaskMetrics`` keys this usage fills (tokens_in, tokens_out, model_calls)."""
        return {
            "tokens_in": self.input_tokens,
            "tokens_out": self.output_tokens,
            "model_calls": self.calls,
        }


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


def invoke_structured(
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
    """
    runnable, name, conversation = _prepare(model, schema, messages, attempts)
    usage, errors = Usage(), list[str]()
    raw: AIMessage | None = None
    for _ in range(attempts):
        out = runnable.invoke(conversation, config=config)
        raw = _raw(out)
        usage.add(raw, conversation)
        value, error = _evaluate(out, schema, name, check)
        if value is not None:
            return StructuredResult(value, usage, raw, len(errors) + 1, errors)
        errors.append(error)
        conversation = [*conversation, *_feedback(raw, error, name)]
    raise _failure(schema, errors, usage, raw)


async def ainvoke_structured(
    model: BaseChatModel,
    schema: type[M],
    messages: str | Sequence[MessageLikeRepresentation],
    *,
    attempts: int = 3,
    config: RunnableConfig | None = None,
    check: Callable[[M], str | None] | None = None,
) -> StructuredResult[M]:
    """Async ``invoke_structured``."""
    runnable, name, conversation = _prepare(model, schema, messages, attempts)
    usage, errors = Usage(), list[str]()
    raw: AIMessage | None = None
    for _ in range(attempts):
        out = await runnable.ainvoke(conversation, config=config)
        raw = _raw(out)
        usage.add(raw, conversation)
        value, error = _evaluate(out, schema, name, check)
        if value is not None:
            return StructuredResult(value, usage, raw, len(errors) + 1, errors)
        errors.append(error)
        conversation = [*conversation, *_feedback(raw, error, name)]
    raise _failure(schema, errors, usage, raw)


# -- shared steps -----------------------------------------------------------------------


def _prepare(
    model: BaseChatModel,
    schema: type[BaseModel],
    messages: str | Sequence[MessageLikeRepresentation],
    attempts: int,
) -> tuple[Runnable[Any, Any], str, list[BaseMessage]]:
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(f"schema must be a pydantic model class, got {schema!r}")
    conversation = convert_to_messages([messages] if isinstance(messages, str) else messages)
    name = convert_to_openai_tool(schema)["function"]["name"]
    runnable = model.with_structured_output(schema, method="function_calling", include_raw=True)
    return runnable, name, conversation


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


def _feedback(raw: AIMessage, error: str, name: str) -> list[BaseMessage]:
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
                f"Call the tool {name!r} again with arguments that satisfy its schema."
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
