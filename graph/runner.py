"""The one way to run the supervisor: open a checkpointer, then run, resume or fork a goal.

The CLI, the eval runner, benchmarks and tests go through :class:`Runner`; the LangGraph
server brings its own checkpointer (``orchestrator/server.py`` opens it with
:func:`graph.persistence.open_checkpointer` too) and the same graph.

Settings: the runner's ``settings`` are the base (file, environment, ``--data-dir``); a run's
overrides (``--model``, ``--auto-approve``) travel as its LangGraph context and the thread
stores them, so ``resume`` and ``fork`` run with the settings the thread started with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from agents import RunContext
from core.settings import Settings
from graph.history import fork_checkpoint
from graph.persistence import open_checkpointer
from graph.runtime import RUN_SETTINGS_KEY
from graph.supervisor import build_graph

RECURSION_LIMIT = 500
"""Supersteps a run may take (each task round is a few; the caps in ``limits`` stop first)."""
STREAM_MODES: Sequence[str] = ("custom", "updates")
"""What a run streams by default: progress events and node updates."""


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    """The config addressing one thread (and optionally one of its checkpoints)."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable, "recursion_limit": RECURSION_LIMIT}


@dataclass
class Runner:
    """The supervisor on a checkpointer, with the base settings its runs build on."""

    graph: CompiledStateGraph[Any, Any, Any, Any]
    settings: Settings

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Runner]:
        """A runner on the configured checkpointer (SQLite under ``data_dir``, or PostgreSQL)."""
        async with open_checkpointer(settings) as saver:
            yield cls(build_graph(checkpointer=saver), settings)

    def context(self, overrides: Mapping[str, Any] | None = None) -> RunContext:
        """The run context for ``overrides`` on this runner's settings (validated now)."""
        return RunContext.build(overrides, base=self.settings)

    async def state(self, thread_id: str, checkpoint_id: str | None = None) -> StateSnapshot:
        """The thread's current state (or the state at one checkpoint)."""
        return await self.graph.aget_state(thread_config(thread_id, checkpoint_id))

    async def exists(self, thread_id: str) -> bool:
        """Whether the thread has any checkpoint."""
        return bool((await self.state(thread_id)).values)

    async def stored_overrides(self, thread_id: str) -> dict[str, Any]:
        """The setting overrides the thread runs with (empty for an unknown thread)."""
        values = (await self.state(thread_id)).values or {}
        return dict(values.get(RUN_SETTINGS_KEY) or values.get("options") or {})

    async def history(self, thread_id: str) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first."""
        return [s async for s in self.graph.aget_state_history(thread_config(thread_id))]

    def stream(
        self,
        payload: Any,
        thread_id: str,
        context: RunContext,
        *,
        checkpoint_id: str | None = None,
        stream_mode: Sequence[str] = STREAM_MODES,
    ) -> AsyncIterator[Any]:
        """Stream a run (a new goal, a ``Command`` or ``None`` to continue) as (mode, chunk).

        ``durability="sync"``: each step is on disk before the next starts, so a crash
        loses nothing that finished."""
        modes: Any = list(stream_mode)
        return self.graph.astream(
            payload,
            thread_config(thread_id, checkpoint_id),
            context=context,
            stream_mode=modes,
            durability="sync",
        )

    async def resume_context(self, thread_id: str) -> RunContext:
        """The context a resume or fork of ``thread_id`` runs with: the thread's own."""
        return self.context(await self.stored_overrides(thread_id))

    async def run(
        self, goal: str, thread_id: str, overrides: Mapping[str, Any] | None = None
    ) -> StateSnapshot:
        """Run ``goal`` on a new thread until it finishes or pauses; return its state."""
        async for _ in self.stream({"goal": goal}, thread_id, self.context(overrides)):
            pass
        return await self.state(thread_id)

    async def resume(
        self, thread_id: str, value: Any = None, *, checkpoint_id: str | None = None
    ) -> StateSnapshot:
        """Continue a thread: answer its interrupts with ``value`` (a map of interrupt id to
        answer), or, with no value, carry on after a crash."""
        payload: Command[Any] | None = None if value is None else Command(resume=value)
        ctx = await self.resume_context(thread_id)
        async for _ in self.stream(payload, thread_id, ctx, checkpoint_id=checkpoint_id):
            pass
        return await self.state(thread_id)

    async def fork(
        self, thread_id: str, checkpoint_id: str, edits: dict[str, Any] | None = None
    ) -> str:
        """Branch the thread at ``checkpoint_id`` (optionally editing state); the new
        checkpoint's id. The original branch stays in the history."""
        saver = self.graph.checkpointer
        assert saver is not None and not isinstance(saver, bool)
        config = await fork_checkpoint(saver, thread_config(thread_id, checkpoint_id), edits)
        return str(config["configurable"]["checkpoint_id"])
