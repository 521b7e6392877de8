"""Per-run lookups shared by the supervisor's nodes: settings, agent registry, events."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer

from agents import AgentRegistry
from core.runconfig import settings_for
from core.settings import Settings

_registries: dict[int, tuple[Settings, AgentRegistry]] = {}


async def registry_for(settings: Settings) -> AgentRegistry:
    """The agent registry for these settings, loaded once per settings object (off the
    event loop: an agents file is read from disk)."""
    hit = _registries.get(id(settings))
    if hit is None or hit[0] is not settings:
        hit = (settings, await AgentRegistry.aload(settings))
        _registries[id(settings)] = hit
    return hit[1]


async def run_context(config: RunnableConfig) -> tuple[Settings, AgentRegistry]:
    """Settings and agent registry for the run ``config`` belongs to."""
    settings = settings_for(config)
    return settings, await registry_for(settings)



def emit(event: str, **data: Any) -> None:
    """Send a progress event on the ``custom`` stream (CLI, server clients and SDK see it)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run
        return
    writer({"event": event, "ts": time.time(), **data})
