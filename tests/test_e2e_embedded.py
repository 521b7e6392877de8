"""One goal per scenario, end to end on the embedded model, checked by outcome.

Not the answer's wording but what the run did: the module exists and passes hidden asserts;
the answer states the fact and cites the right document; the customer database changed
exactly as it should. ``E2E_MODEL`` names another configured model (default ``local``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.models.factory import model_statuses
from core.settings import Settings, load_settings
from graph.runner import Runner
from tools.sandbox import run_sandboxed

MODEL = os.environ.get("E2E_MODEL", "local")
CONFIG = os.environ.get("E2E_CONFIG") or None
"""A TOML file defining ``E2E_MODEL`` when it is not built in (the suite clears
``ORCHESTRATOR_CONFIG`` for every test)."""


def _settings(**overrides: Any) -> Settings:
    return load_settings(config_file=CONFIG, **overrides)


def _skip_reason() -> str | None:
    status = {s.name: s for s in model_statuses(_settings())}.get(MODEL)
    if status is None:
        return f"model {MODEL!r} is not configured"
    return None if status.ready else f"model {MODEL!r} is not ready: {status.detail}"


pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]


async def run(tmp_path: Path, goal: str) -> dict[str, Any]:
    settings = _settings(data_dir=str(tmp_path))
    overrides = {"model": MODEL, "review": {"plan": False, "high_risk_tools": False}}
    thread = f"e2e-{uuid.uuid4().hex[:8]}"
    async with Runner.open(settings) as runner:
        state = await asyncio.wait_for(runner.run(goal, thread, overrides), timeout=600)
    values = dict(state.values)
    values["workspace"] = tmp_path / "workspaces" / thread
    return values


async def test_software_module_passes_hidden_asserts(tmp_path: Path) -> None:
    goal = (
        "Write a Python function is_palindrome(s: str) -> bool that returns True when s reads "
        "the same forwards and backwards, ignoring case, spaces and punctuation. Save it in "
        "palindrome.py."
    )
    out = await run(tmp_path, goal)
    assert out["status"] == "completed"
    module = out["workspace"] / "palindrome.py"
    assert module.is_file() and (out["workspace"] / "test_palindrome.py").is_file()
    hidden = (
        "from palindrome import is_palindrome\n"
        "assert is_palindrome('racecar') is True\n"
        "assert is_palindrome('hello') is False\n"
        "assert is_palindrome('No lemon, no melon') is True\n"
    )
    result = await run_sandboxed(hidden, out["workspace"])
    assert result.ok, result.to_text()
    assert "def is_palindrome" in out["answer"] and "passed" in out["answer"]


async def test_research_answer_states_the_fact_and_cites_the_document(tmp_path: Path) -> None:
    goal = "Using the knowledge base, explain how BM25 ranks documents in full-text search."
    out = await run(tmp_path, goal)
    assert out["status"] == "completed"
    assert "frequency" in out["answer"].lower()
    cited = [c for r in out["results"].values() for c in r.get("citations") or []]
    assert any("full-text-vs-vector-search.md" in c for c in cited)


def _refunds(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT order_id, amount_cents FROM refunds ORDER BY id").fetchall()


async def test_customer_refund_changes_the_database_exactly_once(tmp_path: Path) -> None:
    from tools.context import CUSTOMER_SEED_SQL

    seed = sqlite3.connect(":memory:")
    seed.executescript(CUSTOMER_SEED_SQL.read_text())
    before = seed.execute("SELECT order_id, amount_cents FROM refunds ORDER BY id").fetchall()
    goal = (
        "Customer C001 asks for a refund of order O1001 because it arrived damaged. "
        "Check the policy and handle the refund."
    )
    out = await run(tmp_path, goal)
    assert out["status"] == "completed"
    after = _refunds(tmp_path / "customer_service.sqlite")
    new = after[len(before) :]
    assert after[: len(before)] == before
    assert len(new) == 1 and new[0][0] == "O1001" and 0 < new[0][1] <= 12900
    assert "O1001" in out["answer"]
