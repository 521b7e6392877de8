"""Per-run lookups shared by the supervisor's nodes: the run's context, and progress events."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from agents import AgentRegistry, RunContext, context_of
from core.redact import without_secrets
from core.settings import Settings

RUN_SETTINGS_KEY = "run_settings"
"""State key holding the setting overrides a thread runs with (stored once, reused on resume)."""


def context_for(runtime: Runtime[RunContext] | None, state: Mapping[str, Any]) -> RunContext:
    """The run's context: the one it was given, or the thread's stored one (a resume or fork
    sent with no context). ``options`` in the input is the deprecated way to give overrides."""
    stored = state.get(RUN_SETTINGS_KEY) or state.get("options")
    return context_of(runtime).for_thread(stored)


def settings_update(runtime: Runtime[RunContext] | None, state: Mapping[str, Any]) -> dict[str, Any]:
    """The state update that stores the run's overrides in the thread, when they are new.

    Secrets (an ``api_key`` in a run's model config) are left out: checkpoints never hold them."""
    overrides = without_secrets(context_for(runtime, state).overrides)
    if overrides and overrides != state.get(RUN_SETTINGS_KEY):
        return {RUN_SETTINGS_KEY: overrides}
    return {}


async def run_context(
    runtime: Runtime[RunContext] | None, state: Mapping[str, Any]
) -> tuple[Settings, AgentRegistry]:
    """Settings and agent registry of the run (validated and loaded once per run)."""
    ctx = context_for(runtime, state)
    return ctx.settings, await ctx.registry()


def emit(event: str, **data: Any) -> None:
    """Send a progress event on the ``custom`` stream (CLI, server clients and SDK see it)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run
        return
    writer({"event": event, "ts": time.time(), **data})
