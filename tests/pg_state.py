"""Throwaway PostgreSQL databases for the shared-state tests (``Settings.state_uri``).

One database per test, named after the session, dropped afterwards; absent PostgreSQL is a
skip that says where it was looked for.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from tests.conftest import PG_URI, postgres_available

SESSION = uuid.uuid4().hex[:8]


def _admin() -> object:
    import psycopg

    return psycopg.connect(PG_URI, autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def throwaway_database(label: str = "t") -> Iterator[str]:
    """A new empty database; yields its URI; dropped (connections and all) at the end."""
    name = f"orch_{SESSION}_{label}_{uuid.uuid4().hex[:6]}"
    base = PG_URI.rsplit("/", 1)[0]
    with _admin() as admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with _admin() as admin:  # type: ignore[attr-defined]
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unavailable() -> str | None:
    return None if postgres_available() else f"PostgreSQL is not reachable at {PG_URI}"
