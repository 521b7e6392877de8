"""The customer-service SQLite database: built from the shipped seed, opened with its ledger.

Every connection makes sure the action ledger (``tools.actions``) is there and that refunds
and ticket notes carry the idempotency key of the action that wrote them, under a unique
index: the database itself refuses a second row for one action.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from tools.actions import ensure_ledger
from tools.base import ToolInputError
from tools.context import CUSTOMER_SEED_SQL, ToolContext

_build_lock = threading.Lock()
_prepared: set[Path] = set()
"""Databases whose ledger and key columns this process has already checked."""
_prepare_lock = threading.Lock()

KEYED_TABLES = ("refunds", "ticket_notes")
"""Tables whose rows are written by high-risk actions (one row per idempotency key)."""


def build_sample_db(path: Path) -> None:
    """Create ``path`` from the shipped seed unless it exists (atomic, never clobbers)."""
    with _build_lock:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(CUSTOMER_SEED_SQL.read_text(encoding="utf-8"))
            _prepare(conn)
            conn.commit()
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)


def _prepare(conn: sqlite3.Connection) -> None:
    """Add the ledger tables and the key columns (idempotent; old databases are upgraded)."""
    ensure_ledger(conn)
    for table in KEYED_TABLES:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "idempotency_key" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN idempotency_key TEXT")
        conn.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_idempotency_key "
            f"ON {table}(idempotency_key)"
        )


@contextlib.contextmanager
def connect(ctx: ToolContext) -> Iterator[sqlite3.Connection]:
    """A connection to the run's customer database (built from the seed when allowed)."""
    path = ctx.customer_db
    if not path.exists():
        if not ctx.seed_customer_db:
            raise ToolInputError(f"customer database {str(path)!r} does not exist")
        build_sample_db(path)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        resolved = path.resolve()
        if resolved not in _prepared:
            with _prepare_lock:
                if resolved not in _prepared:
                    _prepare(conn)
                    conn.commit()
                    _prepared.add(resolved)
        yield conn
    finally:
        conn.close()
