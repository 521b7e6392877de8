"""Checkpointers: SQLite by default (a file under ``data_dir``), PostgreSQL by URI.

A PostgreSQL store that cannot be reached (refused, unknown host or database, no answer
within ``db_connect_timeout_s``) is a configuration error naming the setting and where it
points, in one line, before anything runs: the checkpointer's, and the shared state's
(``state_uri``) checked at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.base import BaseCheckpointSaver

from core.settings import ConfigError, Settings
from tools.db import unreachable

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

CHECKPOINT_FILE = "checkpoints.sqlite"
SQLITE_SYNCHRONOUS = "NORMAL"
"""SQLite's ``synchronous`` setting for checkpoint connections (the saver's own ``setup``
puts the file in WAL mode).

In WAL mode, ``NORMAL`` writes each commit to the log without waiting for the disk
(``FULL``, SQLite's default, fsyncs the log at every commit); the log is synced when it
is copied back into the database. What a commit then survives: a crash of the process
(kill -9, an exception, an OOM kill), since the written log is in the operating system's
hands; the file stays consistent after any crash. What it does not: a power loss or an
operating-system crash may roll back the last commits, as if the run had stopped a few
steps earlier, which the resume then re-runs (https://www.sqlite.org/pragma.html#pragma_synchronous,
https://www.sqlite.org/wal.html). A run commits twice per step and once per finished task,
and each fsync cost 0.3 ms on a quiet disk and 5–20 ms on a busy or freshly created file,
queued on the one connection the whole run shares."""


def checkpoint_target(settings: Settings, file: str = CHECKPOINT_FILE) -> str:
    """Where checkpoints go: a PostgreSQL URI, or the SQLite ``file`` under ``data_dir``."""
    if settings.checkpoint_uri:
        return settings.checkpoint_uri
    return str(Path(settings.data_dir) / file)


@asynccontextmanager
async def open_sqlite(path: str | Path) -> AsyncIterator[AsyncSqliteSaver]:
    """The SQLite checkpointer on ``path``, set up (tables, WAL) and tuned as above."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    # Off the event loop: the LangGraph server rejects blocking calls in it.
    await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as sqlite:
        await sqlite.setup()
        async with sqlite.conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}"):
            pass
        yield sqlite


@asynccontextmanager
async def open_checkpointer(
    settings: Settings, file: str = CHECKPOINT_FILE
) -> AsyncIterator[BaseCheckpointSaver]:
    """An async checkpointer for the configured backend, set up and closed cleanly: the one
    place checkpointers are opened (the CLI's runner, reports, evals, the server)."""
    target = checkpoint_target(settings, file)
    if settings.state_uri:
        await asyncio.to_thread(check_reachable, "state_uri", settings.state_uri)
    if target.startswith(("postgres://", "postgresql://")):
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncExitStack() as stack:
            try:
                pg = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(target))
                await pg.setup()
            except psycopg.Error as exc:
                raise ConfigError(unreachable("checkpoint_uri", target, exc)) from None
            yield pg
        return
    async with open_sqlite(target) as sqlite:
        yield sqlite


def check_reachable(setting: str, uri: str) -> None:
    """Connect to ``uri`` once; ``ConfigError`` in one line if it cannot be reached (blocking)."""
    import psycopg

    try:
        psycopg.connect(uri).close()
    except psycopg.Error as exc:
        raise ConfigError(unreachable(setting, uri, exc)) from None
