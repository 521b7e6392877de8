"""Shared fixtures: offline settings, scripted models, checkpointers (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_harness import readme_server  # noqa: F401  (one dev server per session)

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")
os.environ.setdefault("LANGGRAPH_CLI_NO_ANALYTICS", "1")
os.environ.setdefault("LANGGRAPH_NO_VERSION_CHECK", "true")

PG_URI = os.environ.get("ORCHESTRATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        import psycopg

        with psycopg.connect(PG_URI, connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and no user config file."""
    from agents import base_settings

    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    # setenv first so the teardown restores it even if the CLI (--config) sets it.
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", "")
    monkeypatch.delenv("ORCHESTRATOR_CONFIG")
    monkeypatch.chdir(tmp_path)
    base_settings.cache_clear()
    yield
    base_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Setting overrides selecting a checkpoint backend."""
    if request.param == "postgres":
        if not postgres_available():
            pytest.skip(f"PostgreSQL is not reachable at {PG_URI}")
        return {"checkpoint_uri": PG_URI}
    return {}


RunOptions = Callable[..., dict[str, Any]]


@pytest.fixture
def options(tmp_path: Path) -> RunOptions:
    """Build a run's setting overrides: test model, review off unless asked."""

    def build(**overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "model": "test",
            # Structured steps: the embedded model's path (native tool calls are covered in
            # the agents' own tests).
            "models": {"test": {"provider": "test", "model": "test", "tool_mode": "structured"}},
            "data_dir": str(tmp_path / "data"),
            "review": {"plan": False, "high_risk_tools": False, "final_answer": False},
            "adaptive_replanning": False,
            "verify_results": False,
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return base

    return build


@pytest.fixture
async def saver(backend: dict[str, Any], options: RunOptions) -> AsyncIterator[Any]:
    from core.settings import load_settings
    from graph.persistence import open_checkpointer

    async with open_checkpointer(load_settings(**options(**backend))) as checkpointer:
        yield checkpointer
