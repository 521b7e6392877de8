"""A LangGraph cache in PostgreSQL: one result cache for every host that shares the database.

The same contract as LangGraph's ``SqliteCache`` (``BaseCache``: namespaced keys, values
serialised by the cache's ``serde``, optional TTL), in the table
``orchestrator_result_cache``. Where two hosts compute the same entry at once, the first
write stands (``INSERT … ON CONFLICT DO NOTHING``, unless the stored entry expired), so
every reader sees one result for a key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from langgraph.cache.base import BaseCache, FullKey, Namespace

TABLE = "orchestrator_result_cache"
_SETUP_LOCK = 0x4F524348_01
"""Advisory lock held while creating the table: concurrent ``CREATE TABLE IF NOT EXISTS``
by two processes can fail on PostgreSQL's catalog (duplicate ``pg_type`` key)."""


class PostgresCache(BaseCache[Any]):
    """``BaseCache`` on a PostgreSQL table. A short connection per call (a lookup before a
    task, a store after it): nothing held between tasks, nothing to close."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri
        with self._connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (ns TEXT NOT NULL, key TEXT NOT NULL, "
                "expiry DOUBLE PRECISION, encoding TEXT NOT NULL, val BYTEA NOT NULL, "
                "PRIMARY KEY (ns, key))")

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.uri, autocommit=True)  # the URI carries connect_timeout

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        if not keys:
            return {}
        wanted = {(",".join(ns), key): (ns, key) for ns, key in keys}
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT ns, key, expiry, encoding, val FROM {TABLE} "
                "WHERE (ns, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([ns for ns, _ in wanted], [key for _, key in wanted]),
            ).fetchall()
        now = time.time()
        return {
            wanted[(ns, key)]: self.serde.loads_typed((encoding, bytes(val)))
            for ns, key, expiry, encoding, val in rows
            if expiry is None or expiry >= now
        }

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return await asyncio.to_thread(self.get, keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        now = time.time()
        rows = []
        for (ns, key), (value, ttl) in pairs.items():
            encoding, raw = self.serde.dumps_typed(value)
            rows.append((",".join(ns), key, None if ttl is None else now + ttl, encoding, raw))
        if not rows:
            return
        with self._connect() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE} (ns, key, expiry, encoding, val) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (ns, key) DO UPDATE SET expiry = excluded.expiry, "
                "encoding = excluded.encoding, val = excluded.val "
                f"WHERE {TABLE}.expiry IS NOT NULL AND {TABLE}.expiry < %s",
                [(*row, now) for row in rows],
            )

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._connect() as conn:
            if namespaces is None:
                conn.execute(f"DELETE FROM {TABLE}")
            else:
                conn.execute(f"DELETE FROM {TABLE} WHERE ns = ANY(%s)",
                             ([",".join(ns) for ns in namespaces],))

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await asyncio.to_thread(self.clear, namespaces)
