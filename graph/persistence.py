"""Checkpointers: SQLite by default (a file under ``data_dir``), PostgreSQL by URI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from core.settings import Settings

CHECKPOINT_FILE = "checkpoints.sqlite"


def checkpoint_target(settings: Settings, file: str = CHECKPOINT_FILE) -> str:
    """Where checkpoints go: a PostgreSQL URI, or the SQLite ``file`` under ``data_dir``."""
    if settings.checkpoint_uri:
        return settings.checkpoint_uri
    return str(Path(settings.data_dir) / file)


@asynccontextmanager
async def open_checkpointer(
    settings: Settings, file: str = CHECKPOINT_FILE
) -> AsyncIterator[BaseCheckpointSaver]:
    """An async checkpointer for the configured backend, set up and closed cleanly: the one
    place checkpointers are opened (the CLI's runner, reports, evals, the server)."""
    target = checkpoint_target(settings, file)
    if target.startswith(("postgres://", "postgresql://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(target) as pg:
            await pg.setup()
            yield pg
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    # Off the event loop: the LangGraph server rejects blocking calls in it.
    await asyncio.to_thread(Path(target).parent.mkdir, parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(target) as sqlite:
        await sqlite.setup()
        yield sqlite
