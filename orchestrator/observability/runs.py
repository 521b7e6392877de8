"""Reading runs back from the checkpoint database (SQLite or PostgreSQL).

Thread ids come from one ``SELECT DISTINCT`` where the saver exposes its connection, else
from ``alist(None)``; each run's state is then read through the compiled graph's
``aget_state``, which applies the graph's reducers and delta channels exactly as a resume would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from core.settings import Settings
from graph.persistence import open_checkpointer
from graph.supervisor import build_graph

_THREADS_SQL = "SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''"


@dataclass
class RunView:
    """The latest checkpoint of one thread."""

    thread_id: str
    values: dict[str, Any]
    next_nodes: tuple[str, ...] = ()
    interrupts: list[Any] = field(default_factory=list)


async def list_threads(saver: BaseCheckpointSaver) -> list[str]:
    """Every thread id with a checkpoint, sorted."""
    kind = type(saver).__name__
    if kind == "AsyncSqliteSaver":
        async with saver.lock, saver.conn.execute(_THREADS_SQL) as cur:  # type: ignore[attr-defined]
            return sorted(str(row[0]) for row in await cur.fetchall())
    if kind == "AsyncPostgresSaver" and hasattr(saver, "_cursor"):
        async with saver._cursor() as cur:
            await cur.execute(_THREADS_SQL)
            rows = await cur.fetchall()
            return sorted(str(r["thread_id"] if isinstance(r, Mapping) else r[0]) for r in rows)
    # Any other saver (in-memory, custom): walk every checkpoint once.
    threads = {
        str(t.config["configurable"]["thread_id"])
        async for t in saver.alist(None)
        if not t.config["configurable"].get("checkpoint_ns")
    }
    return sorted(threads)


async def read_run(graph: CompiledStateGraph, thread_id: str) -> RunView | None:
    """The thread's latest state, or None when it has no checkpoint."""
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    if not snapshot.values and not snapshot.next:
        return None
    return RunView(
        thread_id=thread_id,
        values=dict(snapshot.values or {}),
        next_nodes=tuple(snapshot.next),
        interrupts=list(snapshot.interrupts),
    )


async def read_runs(graph: CompiledStateGraph, saver: BaseCheckpointSaver, limit: int | None = None) -> list[RunView]:
    """Every run in the database, oldest first (by start time); the newest ``limit`` if given."""
    views = views_sorted(
        [v for t in await list_threads(saver) if (v := await read_run(graph, t)) is not None]
    )
    return views[-limit:] if limit else views


@asynccontextmanager
async def open_run_reader(settings: Settings) -> AsyncIterator[tuple[CompiledStateGraph, BaseCheckpointSaver]]:
    """The supervisor graph on the configured checkpointer, for reading state only."""

    async with open_checkpointer(settings) as saver:
        yield build_graph(checkpointer=saver), saver


def views_sorted(views: Sequence[RunView]) -> list[RunView]:
    """Runs ordered by start time (ties by thread id)."""
    return sorted(views, key=lambda v: (float(v.values.get("started_at") or 0.0), v.thread_id))
