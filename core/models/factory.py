"""Build the chat model for a role from settings: OpenAI-compatible, embedded local, or test.

``openai`` and ``local`` share one code path (langchain_openai.ChatOpenAI); ``local`` first
makes sure the embedded llama.cpp server (xllamacpp, ``local_server.py``) is running with
``local.n_parallel`` slots and points the client at it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import InMemoryRateLimiter
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
    "local_slots",
    "model_statuses",
    "tool_mode",
    "use_model",
]

_cache: dict[tuple[str, ...], BaseChatModel] = {}
_cache_lock = threading.Lock()


class LocalChatOpenAI(LimitedChatOpenAI):
    """ChatOpenAI for the embedded llama.cpp server (xllamacpp).

    That server honours ``max_completion_tokens``, streams tool calls correctly and reports
    usage (with cached prompt tokens) when streaming, so none of llama-cpp-python's
    workarounds remain. What differs from OpenAI is structured output: the server ignores a
    forced *named* ``tool_choice`` but constrains decoding to a ``json_schema``
    response_format, so structured calls use that (see ``structured.py``).
    """

    structured_output_method: ClassVar[Literal["json_schema"]] = "json_schema"
    """How ``ainvoke_structured`` asks this model for a schema object."""


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
    by a mapping whose keys are roles or model names (``{"coder": m}``, ``{"local-1.5b": m}``;
    a role first, then the name of the role's model, ``"*"`` for the rest). For tests and
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
    name = settings.model_name_for(role)
    if override is not None:
        scripted = override.get(role) or override.get(name) or override.get("*")
        if scripted is not None:
            return scripted
    cfg = settings.model_for(role)  # ConfigError naming the key for an unknown model
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
    local = settings.local
    info = ensure_server(
        cfg.model,
        settings.cache_dir,
        n_ctx=cfg.context_window,
        n_parallel=local_slots(settings),
        n_threads=local.n_threads,
        cache_ram_mib=local.cache_ram_mib,
    )
    return _cached(
        ("local", cfg.model_dump_json(), info.base_url, info.api_key),
        lambda: _openai_model(cfg, info.base_url, SecretStr(info.api_key), info.alias),
    )


def local_slots(settings: Settings) -> int:
    """Parallel slots of the embedded server: ``local.n_parallel``, else the run's
    ``limits.max_concurrency`` (every task of a round decodes at once)."""
    return settings.local.n_parallel or settings.limits.max_concurrency


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
    if importlib.util.find_spec("xllamacpp") is None:
        ready = False
        notes.append("xllamacpp not installed: pip install 'agent-orchestrator[local]'")
    else:
        notes.append("xllamacpp installed")
    servers = [s for s in running_servers(cache_dir) if Path(s.model_path) == path.resolve()]
    notes.append(
        f"server running at {servers[0].base_url} (pid {servers[0].pid})"
        if servers
        else "server not running (started on demand)"
    )
    return ready, "; ".join(notes)
