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
import re
import threading
import time
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

from core.models.schema_sampler import hash_int as _hash_int
from core.models.schema_sampler import sample_from_schema
from core.models.schemas import as_openai_tool

__all__ = ["TestChatModel", "sample_from_schema"]

_FORCED = ("any", "required")
_STOPWORDS = frozenset([  # words that make poor topic keywords
    "write", "explain", "describe", "give", "make", "list", "summarize", "create", "about",
    "above", "after", "again", "also", "because", "been", "before", "being", "between", "could",
    "does", "doing", "each", "from", "have", "having", "into", "just", "more", "most", "only",
    "other", "over", "same", "should", "some", "such", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "under", "until", "very", "what",
    "when", "where", "which", "while", "will", "with", "would", "your", "please",
])  # fmt: skip


# -- helpers ----------------------------------------------------------------------------


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
