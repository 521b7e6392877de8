"""Per-run dependencies, the LangGraph way: the ``context_schema`` of every graph we compile.

A run's context is its setting overrides (``{"model": "test", "review": {"plan": false}}``),
as a CLI flag, an SDK client's ``runs.create(..., context=...)`` or a test gives them. From
them the context derives, once per run, what nodes need: the validated :class:`Settings`,
the agent registry, each thread's tool context, and chat models. Nodes reach it through
``Runtime[RunContext]``; nothing is re-derived per node call.

A thread stores its overrides in state (the supervisor's ``run_settings``), so a resume or a
fork that comes without a context — an SDK ``command`` — runs with the thread's own
settings: :meth:`RunContext.for_thread` gives the context built from them, memoised.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, PrivateAttr

from agents.profile import ModelProfile, profile_for
from agents.registry import AgentRegistry
from core.models import achat_model
from core.settings import ConfigError, Settings, load_settings
from tools.context import ToolContext

_serving_clients = False
"""Set in a server process: every run's overrides then come from a client (see ``serve_clients``)."""


def serve_clients() -> None:
    """Mark this process as a server for remote clients (the LangGraph server's entry points
    call it): from then on a run's overrides, given or stored in the thread, may only name
    the settings in ``Settings.client_settable``."""
    global _serving_clients
    _serving_clients = True


def check_client_overrides(base: Settings, overrides: Mapping[str, Any]) -> None:
    """Refuse overrides a client may not send (one line naming them and what is allowed)."""
    refused = sorted(set(overrides) - set(base.client_settable))
    if refused:
        raise ConfigError(
            f"setting(s) {refused} cannot be set by a client run (allowed: "
            f"{', '.join(base.client_settable)}); the server's operator sets them in "
            "orchestrator.toml or ORCHESTRATOR_* (or adds them to client_settable)"
        )


def check_client_review(base: Settings, applied: Settings) -> None:
    """Refuse a client run that turns off a review point the operator's settings turn on
    (compared after validation, so ``0`` or ``"false"`` count as off too)."""
    if base.server.clients_may_relax_review:
        return
    # A client may add pauses, never remove one: approval is what stands between a
    # client's request and a refund.
    relaxed = [f"review.{name}" for name in type(base.review).model_fields
               if getattr(base.review, name) is True and getattr(applied.review, name) is not True]
    if relaxed:
        raise ConfigError(
            f"{', '.join(relaxed)} cannot be turned off by a client run (a client may add review "
            "points, not remove them); the server's operator allows it with "
            "server.clients_may_relax_review = true"
        )


@lru_cache(maxsize=1)
def base_settings() -> Settings:
    """The process's settings (defaults, ``orchestrator.toml``, ``ORCHESTRATOR_*``), loaded once.

    The base every context without an explicit one builds on (the LangGraph server's runs).
    Reads files: call it off the event loop the first time (the server's checkpointer
    factory does)."""
    return load_settings()


class RunContext(BaseModel):
    """What one run depends on. Its fields are the run's nested setting overrides."""

    model_config = ConfigDict(extra="allow", frozen=True)

    _base: Settings | None = PrivateAttr(default=None)
    _settings: Settings | None = PrivateAttr(default=None)
    _registry: AgentRegistry | None = PrivateAttr(default=None)
    _profile: ModelProfile | None = PrivateAttr(default=None)
    _tools: dict[str, ToolContext] = PrivateAttr(default_factory=dict)
    _derived: dict[str, RunContext] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def build(
        cls, overrides: Mapping[str, Any] | None = None, *, base: Settings | None = None
    ) -> RunContext:
        """A context for ``overrides`` on top of ``base`` (default: the process's settings).

        Validates at once, so a bad override fails here with the key it names."""
        ctx = cls(**dict(overrides or {}))
        ctx._base = base
        _ = ctx.settings
        return ctx

    @property
    def overrides(self) -> dict[str, Any]:
        """The overrides as given: what a thread stores and a resume reuses."""
        return dict(self.model_extra or {})

    @property
    def settings(self) -> Settings:
        """Base settings with the overrides applied, validated once (``ConfigError`` names
        the key, as for the CLI)."""
        if self._settings is None:
            base = self._base or base_settings()
            overrides = self.overrides
            if overrides and _serving_clients:
                check_client_overrides(base, overrides)
            settings = base.with_overrides(overrides) if overrides else base
            if overrides and _serving_clients:
                check_client_review(base, settings)
            self._settings = settings
        return self._settings

    @property
    def profile(self) -> ModelProfile:
        """How this run drives its models (``agents.profile``), decided once."""
        if self._profile is None:
            self._profile = profile_for(self.settings)
        return self._profile

    async def registry(self) -> AgentRegistry:
        """The agent registry for these settings, loaded once (off the event loop)."""
        if self._registry is None:
            self._registry = await AgentRegistry.aload(self.settings)
        return self._registry

    def tools(self, run_id: str) -> ToolContext:
        """The tool context (workspace, knowledge base, customer DB) of run ``run_id``."""
        ctx = self._tools.get(run_id)
        if ctx is None:
            ctx = self._tools.setdefault(run_id, ToolContext.from_settings(self.settings, run_id))
        return ctx

    async def chat_model(self, role: str, factory: Any = None) -> BaseChatModel:
        """The chat model for ``role`` (cached per model configuration by the factory)."""
        return await achat_model(self.settings, role, factory)

    def with_role_model(self, role: str, name: str) -> RunContext:
        """This context with ``role`` served by model ``name`` (a stronger tier escalation
        chose for one task); the registry and the tools' contexts are shared — only the
        model differs. ``name`` is a known model (``Settings.tiers`` is validated)."""
        key = f"role-model:{role}={name}"
        with self._lock:
            hit = self._derived.get(key)
            if hit is None:
                settings = self.settings
                hit = RunContext(**self.overrides)
                hit._base = self._base
                hit._settings = settings.model_copy(update={"roles": {**settings.roles, role: name}})
                hit._registry = self._registry
                hit._tools = self._tools
                self._derived[key] = hit
        return hit

    def for_thread(self, stored: Mapping[str, Any] | None) -> RunContext:
        """This context, or — when it carries no overrides of its own — the one built from
        the overrides the thread stored (a resume or fork sent with no context)."""
        if self.overrides or not stored:
            return self
        key = json.dumps(dict(stored), sort_keys=True, default=str)
        with self._lock:
            hit = self._derived.get(key)
            if hit is None:
                hit = RunContext.build(stored, base=self._base)
                self._derived[key] = hit
        return hit


def context_of(runtime: Runtime[Any] | None) -> RunContext:
    """The run's context from the runtime; a default one when the run was given none."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, RunContext):
        return ctx
    if isinstance(ctx, Mapping):  # a caller that passed a plain dict
        return RunContext.build(ctx)
    return RunContext()  # cheap: no overrides, so nothing to validate


def thread_id_of(config: RunnableConfig | None) -> str:
    """The run id tools work under (workspaces): the thread id, or ``default``."""
    thread = ((config or {}).get("configurable") or {}).get("thread_id")
    return str(thread) if thread else "default"
