"""A deterministic chat model for tests, benchmarks and demos (no network, no weights).

``TestChatModel`` answers like a real tool-calling model: with a forced ``tool_choice`` it
returns a tool call whose arguments are generated from the tool's JSON schema (seeded by a
hash of the prompt, so the same prompt always gets the same call), otherwise a short
paragraph restating the request. Answers can be scripted per call (``script``) or per
tool/schema name (``responses``); latency and token usage are simulated.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Annotated, Any, Literal, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCallChunk,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, Field, PrivateAttr, SkipValidation, field_validator

from core.models.schemas import as_openai_tool

__all__ = ["TestChatModel", "sample_from_schema"]

_FORCED = ("any", "required")
_WORDS = (
    "alpha", "bravo", "delta", "echo", "harbor", "lumen", "orbit", "quartz", "river", "summit",
)  # fmt: skip
_STOPWORDS = frozenset([  # words that make poor topic keywords
    "write", "explain", "describe", "give", "make", "list", "summarize", "create", "about",
    "above", "after", "again", "also", "because", "been", "before", "being", "between", "could",
    "does", "doing", "each", "from", "have", "having", "into", "just", "more", "most", "only",
    "other", "over", "same", "should", "some", "such", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "under", "until", "very", "what",
    "when", "where", "which", "while", "will", "with", "would", "your", "please",
])  # fmt: skip
_MAX_DEPTH = 8


# -- schema-driven argument generation --------------------------------------------------


def sample_from_schema(schema: dict[str, Any], seed: int | str) -> Any:
    """A deterministic value valid against a JSON schema (the subset tool schemas use).

    Handles ``$ref``/``$defs``, ``allOf``/``anyOf``/``oneOf``, ``enum``/``const``, required
    and optional properties, arrays (1-3 items within minItems/maxItems), string lengths and
    formats, numeric bounds and booleans.
    """
    rng = random.Random(seed if isinstance(seed, int) else _hash_int(seed))
    return _Sampler(schema, rng).value(schema, "value", 0)


class _Sampler:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise ValueError(f"TestChatModel: only local $ref is supported, got {ref!r}")
            target: Any = self.root
            for token in ref.lstrip("#/").split("/") if ref != "#" else []:
                target = target[token.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
            if seen > 50:
                raise ValueError(f"TestChatModel: $ref cycle at {ref!r}")
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                for key, val in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **val}
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *val]
                    else:
                        merged.setdefault(key, val)
            schema = merged
        return schema

    def value(self, schema: dict[str, Any] | bool, name: str, depth: int) -> Any:
        if schema is True or schema == {}:
            return f"{name} {self.rng.choice(_WORDS)}"
        if schema is False:
            raise ValueError(f"TestChatModel: schema for {name!r} accepts no value")
        schema = self.resolve(schema)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            return copy.deepcopy(self.rng.choice(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                # Prefer a real value over null so optional fields get exercised, but fall back
                # to null when nesting gets deep (recursive schemas must terminate).
                non_null = [o for o in options if o.get("type") != "null"]
                if depth >= _MAX_DEPTH and len(non_null) < len(options):
                    return None
                return self.value(self.rng.choice(non_null or options), name, depth)
        typ = schema.get("type")
        if isinstance(typ, list):
            non_null_types = [t for t in typ if t != "null"] or ["null"]
            typ = self.rng.choice(non_null_types)
        if typ is None:
            typ = "object" if "properties" in schema else "array" if "items" in schema else "string"
        maker = getattr(self, f"make_{typ}", None)
        if maker is None:
            raise ValueError(f"TestChatModel: unsupported JSON schema type {typ!r} at {name!r}")
        return maker(schema, name, depth)

    def make_null(self, schema: dict[str, Any], name: str, depth: int) -> None:
        return None

    def make_boolean(self, schema: dict[str, Any], name: str, depth: int) -> bool:
        return self.rng.random() < 0.5

    def _bounds(self, schema: dict[str, Any], step: float) -> tuple[float, float]:
        lo = schema.get("minimum", float("-inf"))
        hi = schema.get("maximum", float("inf"))
        if "exclusiveMinimum" in schema:
            lo = max(lo, schema["exclusiveMinimum"] + step)
        if "exclusiveMaximum" in schema:
            hi = min(hi, schema["exclusiveMaximum"] - step)
        if lo == float("-inf") and hi == float("inf"):
            lo, hi = 0, 100
        elif lo == float("-inf"):
            lo = hi - 100
        elif hi == float("inf"):
            hi = lo + 100
        if lo > hi:
            raise ValueError(f"TestChatModel: empty numeric range {schema}")
        return lo, hi

    def make_integer(self, schema: dict[str, Any], name: str, depth: int) -> int:
        lo, hi = self._bounds(schema, 1)
        lo_i, hi_i = int(-(-lo // 1)), int(hi // 1)  # ceil / floor
        value = self.rng.randint(lo_i, hi_i)
        mult = schema.get("multipleOf")
        if isinstance(mult, int) and mult > 0:
            value = max(lo_i, (value // mult) * mult)
            if value % mult:
                value += mult - value % mult
        return value

    def make_number(self, schema: dict[str, Any], name: str, depth: int) -> float:
        lo, hi = self._bounds(schema, 0.01)
        value = round(self.rng.uniform(lo, hi), 2)
        return min(max(value, lo), hi)

    def make_string(self, schema: dict[str, Any], name: str, depth: int) -> str:
        fmt = schema.get("format")
        n = self.rng.randint(0, 999)
        formats = {
            "date-time": f"2024-01-{n % 28 + 1:02d}T12:00:00Z",
            "date": f"2024-01-{n % 28 + 1:02d}",
            "time": "12:00:00",
            "email": f"user{n}@example.com",
            "uri": f"https://example.com/{name}/{n}",
            "url": f"https://example.com/{name}/{n}",
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
        }
        text: str = formats.get(
            fmt or "", f"{name.replace('_', ' ')} {self.rng.choice(_WORDS)} {n}"
        )
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, text):
            text = next(
                (
                    c
                    for c in (f"{name[:1] or 'x'}{n}", "t1", "abc", "A1", "0", "x")
                    if re.search(pattern, c)
                ),
                text,
            )
        min_len, max_len = schema.get("minLength", 0), schema.get("maxLength")
        if len(text) < min_len:
            text = (text + " " + "x" * min_len)[:min_len]
        if max_len is not None:
            text = text[:max_len]
        return text

    def make_array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", max(3, lo))
        count = min(max(self.rng.randint(1, 3), lo), hi)
        if depth >= _MAX_DEPTH:
            count = lo
        items = schema.get("items", {})
        prefix = schema.get("prefixItems", [])
        item_name = name[:-1] if name.endswith("s") and len(name) > 2 else f"{name} item"
        out = []
        for i in range(max(count, len(prefix))):
            sub = prefix[i] if i < len(prefix) else items
            value = self.value(sub, item_name, depth + 1)
            if schema.get("uniqueItems") and value in out:
                continue
            out.append(value)
        return out

    def make_object(self, schema: dict[str, Any], name: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            # Required fields always; optional ones half the time (deterministically).
            if key in required or (depth < _MAX_DEPTH and self.rng.random() < 0.5):
                out[key] = self.value(sub, key, depth + 1)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and depth < _MAX_DEPTH:
            out[f"{name.replace(' ', '_')}_key"] = self.value(extra, name, depth + 1)
        for key in required - set(out):  # required but not described in properties
            out[key] = f"{key} {self.rng.choice(_WORDS)}"
        return out


# -- helpers ----------------------------------------------------------------------------


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _message_text(message: BaseMessage) -> str:
    text = str(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        text += json.dumps([[tc["name"], tc["args"]] for tc in message.tool_calls], sort_keys=True)
    return f"{message.type}:{text}"


def _prompt_text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(_message_text(m) for m in messages)


def _last_request(messages: Sequence[BaseMessage]) -> str:
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    source = humans[-1] if humans else (messages[-1] if messages else None)
    return " ".join(str(source.text).split()) if source is not None else ""


def _default_text(messages: Sequence[BaseMessage]) -> str:
    request = _last_request(messages)
    if not request:
        return "There is no request to respond to."
    keywords: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z0-9_-]{3,}", request):
        if word.lower() not in _STOPWORDS and word.lower() not in (k.lower() for k in keywords):
            keywords.append(word)
    snippet = request if len(request) <= 240 else request[:239] + "…"
    topics = (
        "the request as stated"
        if not keywords
        else keywords[0]
        if len(keywords) == 1
        else ", ".join(keywords[:3])
        + f" and {keywords[3] if len(keywords) > 3 else 'related points'}"
    )
    return (
        f'Response to: "{snippet}". This answer addresses {topics}. '
        "It restates the request, outlines the main points to consider and gives a short, "
        "direct conclusion."
    )


def _usage(n_in: int, n_out: int) -> UsageMetadata:
    return UsageMetadata(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)


def _tool_names(tools: Sequence[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def _normalize_tool_choice(choice: Any, names: Sequence[str]) -> str | None:
    """Map every spelling of tool_choice to None/"auto"/"none"/"any" or a tool name."""
    if choice is None or choice is False:
        return None
    if choice is True:
        return "any"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if not isinstance(name, str):
            raise ValueError(f"TestChatModel: unrecognized tool_choice {choice!r}")
        choice = name
    if not isinstance(choice, str):
        raise ValueError(f"TestChatModel: tool_choice must be str, bool or dict, got {choice!r}")
    if choice in names:
        return choice
    if choice in _FORCED:
        return "any"
    if choice in ("auto", "none"):
        return choice
    raise ValueError(
        f"TestChatModel: tool_choice {choice!r} names no bound tool; bound tools: {list(names)}"
    )


# -- the model --------------------------------------------------------------------------


class TestChatModel(BaseChatModel):
    """Deterministic tool-calling chat model: scripted or schema-generated answers, no network."""

    __test__ = False  # not a pytest test class despite the name

    latency_s: float = Field(default=0.0, ge=0)
    """Simulated latency per call (asyncio.sleep on the async path, time.sleep on sync)."""
    tokens_in: int | None = Field(default=None, ge=0)
    """Fixed prompt-token count per call; None = approximate count of the prompt."""
    tokens_out: int | None = Field(default=None, ge=0)
    """Fixed completion-token count per call; None = approximate count of the completion."""
    responses: dict[str, Any] = Field(default_factory=dict)
    """Tool/schema name -> args dict, or callable(messages) -> args dict, for forced calls."""
    script: Annotated[list[AIMessage | str], SkipValidation()] = Field(default_factory=list)
    """Replies consumed in order, one per call; afterwards the default behaviour applies."""
    text: str | Callable[[list[BaseMessage]], str] | None = None
    """Reply text when no tool is forced; None = a paragraph restating the last request."""
    model_name: str = "test"
    """Reported in ``response_metadata["model_name"]``."""

    @field_validator("script", mode="before")
    @classmethod
    def _check_script(cls, value: Any) -> list[AIMessage | str]:
        # AIMessage's own validator crashes on a str, so check the items here instead.
        items = list(value)
        for item in items:
            if not isinstance(item, (AIMessage, str)):
                raise ValueError(f"script items must be AIMessage or str, got {item!r}")
        return items

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _script_pos: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "test-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "latency_s": self.latency_s}

    @property
    def script_remaining(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self.script) - self._script_pos

    # -- binding ------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (anything ``convert_to_openai_tool`` accepts) and an optional tool_choice:
        a tool name, ``"any"``/``"required"``/``True`` (force some tool), ``"auto"`` or ``"none"``.
        """
        formatted = [as_openai_tool(t) for t in tools]
        choice = _normalize_tool_choice(tool_choice, _tool_names(formatted))
        if choice is not None:
            kwargs["tool_choice"] = choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Structured output like ChatOpenAI: ``function_calling`` forces the named tool;
        ``json_schema``/``json_mode`` return the JSON as message content."""
        if kwargs:
            raise ValueError(f"TestChatModel.with_structured_output: unsupported {sorted(kwargs)}")
        if schema is None:
            raise ValueError("TestChatModel.with_structured_output: a schema is required")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        tool = as_openai_tool(schema)
        name = tool["function"]["name"]
        ls_format = {"kwargs": {"method": method}, "schema": tool}  # the tool form: no rebuild
        llm: Runnable[Any, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            llm = self.bind_tools([schema], tool_choice=name, ls_structured_output_format=ls_format)
            parser = (
                PydanticToolsParser(tools=[cast(type[BaseModel], schema)], first_tool_only=True)
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            llm = self.bind(response_format=tool["function"], ls_structured_output_format=ls_format)
            parser = (
                PydanticOutputParser(pydantic_object=cast(type[BaseModel], schema))
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"TestChatModel.with_structured_output: unknown method {method!r}; "
                "use 'function_calling', 'json_schema' or 'json_mode'"
            )
        if not include_raw:
            return llm | parser
        parser_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
        fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | fallback

    # -- answering ----------------------------------------------------------------------

    def _next_scripted(self) -> AIMessage | str | None:
        with self._lock:  # parallel calls must each get a distinct scripted reply
            if self._script_pos >= len(self.script):
                return None
            item = self.script[self._script_pos]
            self._script_pos += 1
            return item

    def _respond(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        tools: list[Any] = list(kwargs.get("tools") or [])
        names = _tool_names(tools)
        choice = _normalize_tool_choice(kwargs.get("tool_choice"), names)
        prompt = _prompt_text(messages)
        scripted = self._next_scripted()
        if scripted is not None:
            message = self._from_script(scripted)
        elif choice is not None and choice not in ("auto", "none"):
            if not tools:
                raise ValueError(f"TestChatModel: tool_choice={choice!r} but no tools are bound")
            tool = (
                tools[_hash_int(prompt) % len(tools)]
                if choice == "any"
                else tools[names.index(choice)]
            )
            name = tool["function"]["name"]
            args = self._args_for(name, tool["function"].get("parameters") or {}, messages, prompt)
            call_id = f"call_{hashlib.sha256((prompt + name).encode()).hexdigest()[:16]}"
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}],
            )
        elif isinstance(kwargs.get("response_format"), dict):
            fmt = kwargs["response_format"]
            name = fmt.get("name", "response")
            args = self._args_for(name, fmt.get("parameters") or {}, messages, prompt)
            message = AIMessage(content=json.dumps(args))
        else:
            message = AIMessage(content=self._text(messages))
        n_in = (
            self.tokens_in
            if self.tokens_in is not None
            else count_tokens_approximately(messages, tools=list(tools) or None)
        )
        n_out = (
            self.tokens_out
            if self.tokens_out is not None
            else count_tokens_approximately([message])
        )
        if message.usage_metadata is None:
            message.usage_metadata = _usage(n_in, n_out)
        message.response_metadata = {
            **message.response_metadata,
            "model_name": self.model_name,
            "finish_reason": "tool_calls" if message.tool_calls else "stop",
        }
        return message

    def _from_script(self, item: AIMessage | str) -> AIMessage:
        if isinstance(item, str):
            return AIMessage(content=item)
        if not isinstance(item, AIMessage):
            raise TypeError(f"TestChatModel.script items must be AIMessage or str, got {item!r}")
        message = item.model_copy(deep=True)
        for i, call in enumerate(message.tool_calls):  # ToolMessages need ids to answer
            if not call.get("id"):
                call["id"] = f"call_script_{self._script_pos}_{i}"
        return message

    def _args_for(
        self, name: str, params: dict[str, Any], messages: list[BaseMessage], prompt: str
    ) -> dict[str, Any]:
        if name in self.responses:
            spec = self.responses[name]
            args = spec(messages) if callable(spec) else copy.deepcopy(spec)
            if isinstance(args, BaseModel):
                args = args.model_dump(mode="json")
            if not isinstance(args, dict):
                raise TypeError(
                    f"TestChatModel.responses[{name!r}] must be a dict (or return one), got {args!r}"
                )
            return args
        value = sample_from_schema(params or {"type": "object"}, f"{prompt}\x00{name}")
        if not isinstance(value, dict):
            raise ValueError(f"TestChatModel: parameters of tool {name!r} are not an object schema")
        return value

    def _text(self, messages: list[BaseMessage]) -> str:
        if self.text is None:
            return _default_text(messages)
        out = self.text(messages) if callable(self.text) else self.text
        if not isinstance(out, str):
            raise TypeError(f"TestChatModel.text must be a str (or return one), got {out!r}")
        return out

    # -- BaseChatModel hooks ------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._respond(messages, **kwargs)
        if self.latency_s:
            time.sleep(self.latency_s)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._respond(messages, **kwargs)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)  # overlaps with other calls
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._respond(messages, **kwargs)
        if self.latency_s:
            time.sleep(self.latency_s)
        for chunk in _chunks(message):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        message = self._respond(messages, **kwargs)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        for chunk in _chunks(message):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    """Split a reply into streaming chunks: words of text, then tool-call name and arg pieces."""
    content = message.content
    if isinstance(content, str):
        for piece in re.split(r"(\s+)", content):
            if piece:
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece, id=message.id))
    elif content:
        yield ChatGenerationChunk(message=AIMessageChunk(content=content, id=message.id))
    for index, call in enumerate(message.tool_calls):
        args = json.dumps(call["args"])
        pieces = [args[i : i + 24] for i in range(0, len(args), 24)] or ["{}"]
        for j, piece in enumerate(pieces):
            tc = ToolCallChunk(
                name=call["name"] if j == 0 else None,
                args=piece,
                id=call.get("id") if j == 0 else None,
                index=index,
                type="tool_call_chunk",
            )
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[tc]))
    # Metadata once, on the last chunk: merging chunks would concatenate repeated strings.
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )
