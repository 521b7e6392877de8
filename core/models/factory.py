"""Build the chat model for a role from settings: OpenAI-compatible, embedded local, or test.

``openai`` and ``local`` share one code path (langchain_openai.ChatOpenAI); ``local`` first
makes sure the embedded llama.cpp server is running and points the client at it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from core.models.gguf import (
    ARTIFACTS,
    ModelError,
    gguf_target,
    locate_chunks,
    verify_file,
)
from core.models.limits import LimitedChatOpenAI
from core.models.test_model import TestChatModel
from core.settings import ConfigError, ModelConfig, Settings

__all__ = [
    "LocalChatOpenAI",
    "ModelStatus",
    "chat_model",
    "model_statuses",
    "tool_mode",
    "use_model",
]

_cache: dict[tuple[str, ...], BaseChatModel] = {}
_cache_lock = threading.Lock()


class LocalChatOpenAI(LimitedChatOpenAI):
    """ChatOpenAI adjusted to llama-cpp-python's server.

    That server ignores ``max_completion_tokens`` (what ChatOpenAI sends), so generation
    would be uncapped; it repeats the tool name in every streamed tool-call chunk; and it
    reports no usage when streaming, so usage is estimated for streamed replies. It rejects
    ``json_schema`` response formats, so structured output uses a forced tool call.
    """

    def with_structured_output(  # type: ignore[override]
        self,
        schema: Any = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        tools: list[Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Like ChatOpenAI's, but ``json_schema`` (unsupported by llama.cpp) becomes a forced
        tool call, which the server constrains to the schema with a grammar."""
        if method == "json_schema":
            method = "function_calling"
        return super().with_structured_output(
            schema, method=method, include_raw=include_raw, strict=strict, tools=tools, **kwargs
        )

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        return payload

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text: list[str] = []
        reported = False
        for chunk in super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            reported = reported or getattr(chunk.message, "usage_metadata", None) is not None
            text.append(str(chunk.message.text))
            yield chunk
        if not reported:
            yield _usage_chunk(messages, "".join(text))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        text: list[str] = []
        reported = False
        async for chunk in super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
            reported = reported or getattr(chunk.message, "usage_metadata", None) is not None
            text.append(str(chunk.message.text))
            yield chunk
        if not reported:
            yield _usage_chunk(messages, "".join(text))


def _usage_chunk(messages: list[BaseMessage], text: str) -> ChatGenerationChunk:
    n_in = count_tokens_approximately(messages)
    n_out = count_tokens_approximately([AIMessage(content=text)])
    usage = UsageMetadata(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)
    return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))


def tool_mode(cfg: ModelConfig) -> Literal["native", "structured"]:
    """How agents call tools with this model; ``auto`` = structured for local, else native."""
    if cfg.tool_mode != "auto":
        return cfg.tool_mode
    return "structured" if cfg.provider == "local" else "native"


_override: ContextVar[Mapping[str, BaseChatModel] | None] = ContextVar(
    "model_override", default=None
)


@contextmanager
def use_model(model: BaseChatModel | Mapping[str, BaseChatModel]) -> Iterator[None]:
    """Within the block (and graph runs started in it), serve ``model`` to every role, or
    to the roles in a ``{role: model}`` mapping (``"*"`` for the rest). For tests and
    benchmarks that script a model object rather than configure one."""
    token = _override.set(model if isinstance(model, Mapping) else {"*": model})
    try:
        yield
    finally:
        _override.reset(token)


def chat_model(settings: Settings, role: str) -> BaseChatModel:
    """The chat model for ``role``; instances are cached per model configuration so that a
    rate limiter is shared by every user of the same endpoint in this process."""
    override = _override.get()
    if override is not None and (role in override or "*" in override):
        return override.get(role) or override["*"]
    cfg = settings.model_for(role)  # ConfigError naming the key for an unknown model
    name = settings.model_name_for(role)
    if cfg.provider == "test":
        return _cached(("test", cfg.model_dump_json()), lambda: _test_model(cfg))
    if cfg.provider == "openai":
        base_url, api_key = _openai_endpoint(name, cfg)
        secret = api_key.get_secret_value()
        return _cached(
            ("openai", cfg.model_dump_json(), base_url or "", secret),
            lambda: _openai_model(cfg, base_url, api_key),
        )
    from core.models.local_server import ensure_server

    if not cfg.model:
        raise ConfigError(f"models.{name}.model: set a built-in name {sorted(ARTIFACTS)} or a path")
    # Every call checks the server (cheap when it is up) so a restarted server is picked up.
    info = ensure_server(cfg.model, settings.cache_dir, n_ctx=cfg.context_window)
    return _cached(
        ("local", cfg.model_dump_json(), info.base_url),
        lambda: _openai_model(cfg, info.base_url, SecretStr("local"), info.alias),
    )


async def achat_model(
    settings: Settings,
    role: str,
    factory: Callable[[Settings, str], BaseChatModel] | None = None,
) -> BaseChatModel:
    """``chat_model`` (or ``factory``) without blocking the event loop: for the embedded
    model, resolving checks (or starts) the llama.cpp server — file locks and HTTP — so it
    runs in a thread. Other providers come from an in-memory cache."""
    build = factory or chat_model
    if settings.model_for(role).provider == "local":
        return await asyncio.to_thread(build, settings, role)
    return build(settings, role)


def _cached(key: tuple[str, ...], build: Callable[[], BaseChatModel]) -> BaseChatModel:
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def _test_model(cfg: ModelConfig) -> TestChatModel:
    return TestChatModel(latency_s=cfg.test_latency_s, model_name=cfg.model or "test")


def _openai_endpoint(name: str, cfg: ModelConfig) -> tuple[str | None, SecretStr]:
    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = cfg.api_key or (
        SecretStr(os.environ["OPENAI_API_KEY"]) if os.environ.get("OPENAI_API_KEY") else None
    )
    if api_key is None:
        if base_url is None:
            raise ConfigError(
                f"models.{name}.api_key: not set and OPENAI_API_KEY is empty "
                "(set one, or a base_url for an endpoint without authentication)"
            )
        api_key = SecretStr("not-needed")  # self-hosted endpoints often need no key
    if not cfg.model:
        raise ConfigError(f"models.{name}.model: the model name to request is empty")
    return base_url, api_key


def _openai_model(
    cfg: ModelConfig, base_url: str | None, api_key: SecretStr, model: str | None = None
) -> ChatOpenAI:
    limiter = (
        InMemoryRateLimiter(requests_per_second=cfg.requests_per_second)
        if cfg.requests_per_second
        else None
    )
    local = cfg.provider == "local"
    cls = LocalChatOpenAI if local else LimitedChatOpenAI
    return cls(
        max_concurrent_calls=cfg.max_concurrent_calls,
        model=model or cfg.model,
        base_url=base_url,
        api_key=api_key,
        temperature=cfg.temperature,
        max_completion_tokens=cfg.max_tokens,
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        rate_limiter=limiter,
        stream_usage=True,
        # llama-cpp-python garbles streamed tool calls; tool-bound calls are sent unstreamed.
        disable_streaming="tool_calling" if local else False,
    )


# -- status for `orchestrator models` -----------------------------------------------------


@dataclass(frozen=True)
class ModelStatus:
    """Whether a configured model can be used, for ``orchestrator models``."""

    name: str
    """Model name in settings."""
    provider: str
    """openai, local or test."""
    model: str
    """Model requested (name, built-in or GGUF path)."""
    ready: bool
    """True when a call should work without further setup."""
    detail: str
    """What was checked, and what to do if not ready."""


def model_statuses(settings: Settings) -> list[ModelStatus]:
    """The status of every built-in and configured model; never calls a remote endpoint."""
    out = []
    for name, cfg in sorted(settings.all_models().items()):
        if cfg.provider == "test":
            ready, detail = True, "deterministic test model (no network)"
        elif cfg.provider == "openai":
            ready, detail = _openai_status(name, cfg)
        else:
            ready, detail = _local_status(cfg, settings.cache_dir)
        out.append(ModelStatus(name, cfg.provider, cfg.model, ready, detail))
    return out


def _openai_status(name: str, cfg: ModelConfig) -> tuple[bool, str]:
    try:
        base_url, api_key = _openai_endpoint(name, cfg)
    except ConfigError as err:
        return False, str(err)
    keyed = api_key.get_secret_value() != "not-needed"
    return (
        True,
        f"base_url={base_url or 'OpenAI default'}; api key {'set' if keyed else 'not needed'}",
    )


def _local_status(cfg: ModelConfig, cache_dir: Path) -> tuple[bool, str]:
    from core.models.local_server import running_servers

    notes: list[str] = []
    ready = True
    artifact = ARTIFACTS.get(cfg.model)
    path = gguf_target(cfg.model, cache_dir) if artifact else Path(cfg.model).expanduser()
    if artifact:
        try:
            locate_chunks(artifact)
            notes.append("chunks installed")
        except ModelError as err:
            return False, str(err)
        if path.exists():
            try:
                verify_file(path, artifact.size, artifact.sha256)
                notes.append(f"assembled and verified: {path}")
            except ModelError as err:
                notes.append(
                    f"assembled file failed verification ({err}); delete it to re-assemble"
                )
        else:
            notes.append("not assembled yet (done on first use)")
    elif not path.is_file():
        return False, f"GGUF file not found: {path}"
    if importlib.util.find_spec("llama_cpp") is None:
        ready = False
        notes.append("llama_cpp not installed: pip install 'agent-orchestrator[local]'")
    else:
        notes.append("llama_cpp installed")
    servers = [s for s in running_servers(cache_dir) if Path(s.model_path) == path.resolve()]
    notes.append(
        f"server running at {servers[0].base_url} (pid {servers[0].pid})"
        if servers
        else "server not running (started on demand)"
    )
    return ready, "; ".join(notes)
