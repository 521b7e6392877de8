"""One SQL interface for the tools' stores: embedded SQLite, or PostgreSQL shared by hosts.

The customer-service tools and the action ledger are written against Python's ``sqlite3``
(``?`` parameters, ``BEGIN IMMEDIATE``, rows indexed by position or column name,
``cursor.lastrowid``). ``PgConnection`` gives a psycopg connection that same surface, so
the same statements run on PostgreSQL when several hosts must see one database:

- ``?`` placeholders become ``%s`` (outside quoted literals).
- ``BEGIN IMMEDIATE`` (SQLite: take the database's write lock before reading, so a check
  and the write that depends on it are atomic) becomes a transaction-scoped advisory lock
  held until commit or rollback: writers of one store are serialised across every host,
  exactly as SQLite serialises them on one host. Unique constraints stay the backstop.
- ``lastrowid`` reads ``lastval()`` (the identity value the session's last insert drew).
- ``executescript`` runs a multi-statement script without parameters.
- SQLite's ``datetime('now', '<modifier>')`` is provided as a SQL function by the store
  that needs it (``tools.customer_db``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg.rows import RowMaker


class Row(Protocol):
    """A result row: by position or by column name (``sqlite3.Row`` and ``PgRow``)."""

    def __getitem__(self, key: Any, /) -> Any: ...


class Cursor(Protocol):
    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the tools use of a connection: ``sqlite3.Connection`` and ``PgConnection``."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executescript(self, sql_script: str, /) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def is_postgres(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(("postgresql://", "postgres://"))


def where(uri: str) -> str:
    """``host:port/dbname`` of a PostgreSQL URI, for messages (never the password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(uri)
    except psycopg.Error:
        return "(an unparsable URI)"
    return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def unreachable(setting: str, uri: str, exc: BaseException) -> str:
    """One line saying which setting's PostgreSQL could not be reached, where, and why."""
    if isinstance(exc, psycopg.errors.ConnectionTimeout):
        info = psycopg.conninfo.conninfo_to_dict(uri)
        why = f"no answer within {info.get('connect_timeout', '?')} s (db_connect_timeout_s)"
    else:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        why = lines[0] if lines else type(exc).__name__
        why = why.removeprefix("connection failed: ")
        if "failed: " in why:  # 'connection to server at "h", port p failed: <the reason>'
            why = why.split("failed: ", 1)[1]
    return f"{setting}: cannot connect to PostgreSQL at {where(uri)}: {' '.join(why.split())}"


class PgRow(tuple[Any, ...]):
    """A row indexed like ``sqlite3.Row``: ``row[0]`` or ``row["id"]``."""

    names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return super().__getitem__(self.names.index(key))
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self.names)


def _pg_rows(cursor: Any) -> RowMaker[PgRow]:
    names = tuple(d.name for d in cursor.description or ())
    row_type = type("Row", (PgRow,), {"names": names})

    def make(values: Sequence[Any]) -> PgRow:
        return row_type(values)  # type: ignore[no-any-return]

    return make


_QUOTED_OR_MARK = re.compile(r"('(?:[^']|'')*'|\"[^\"]*\")|(\?)|(%)")


def to_pg(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%``, leaving quoted literals alone."""

    def swap(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1).replace("%", "%%")
        return "%s" if m.group(2) else "%%"

    return _QUOTED_OR_MARK.sub(swap, sql)


class _PgCursor:
    def __init__(self, conn: psycopg.Connection[PgRow], cursor: psycopg.Cursor[PgRow]) -> None:
        self._conn = conn
        self._cursor = cursor

    @property
    def lastrowid(self) -> int | None:
        row = self._conn.execute("SELECT lastval()").fetchone()
        return None if row is None else int(row[0])

    def fetchone(self) -> PgRow | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[PgRow]:
        return self._cursor.fetchall()


class PgConnection:
    """A psycopg connection with the ``sqlite3`` surface the tools use (see the module)."""

    def __init__(self, uri: str, schema: str, write_lock: int) -> None:
        self.schema = schema
        self.write_lock = write_lock
        # The connect timeout is the URI's (``Settings.db_connect_timeout_s`` adds one).
        self.raw: psycopg.Connection[PgRow] = psycopg.connect(
            uri, row_factory=_pg_rows,
            options=f"-c search_path={schema},public",
        )

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _PgCursor:
        if sql.strip().upper() == "BEGIN IMMEDIATE":
            return _PgCursor(self.raw, self.raw.execute(
                "SELECT pg_advisory_xact_lock(%s)", (self.write_lock,)))
        if parameters:
            return _PgCursor(self.raw, self.raw.execute(to_pg(sql), tuple(parameters)))  # type: ignore[arg-type]
        return _PgCursor(self.raw, self.raw.execute(sql))  # type: ignore[arg-type]

    def executescript(self, sql_script: str, /) -> None:
        self.raw.execute(sql_script)  # type: ignore[arg-type]

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        self.raw.close()
