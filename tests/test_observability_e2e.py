"""A real supervisor run on the test model: metrics land in checkpoints, secrets do not.

Secrets are configured both in the process settings (environment, like a deployment would)
and in the run's ``configurable`` overrides (like a server client would); the run itself
uses the deterministic test model. Then every byte of the data directory, every row of the
checkpoint tables, and every report format are searched for them.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from pydantic import SecretStr
from rich.console import Console

from agents import base_settings
from core.settings import ModelConfig, Settings
from tests.html_text import parse_svgs

ENV_MODEL_SECRET = "sk-test-SECRET-123"
ENV_OPENAI_SECRET = "sk-env-SECRET-456"
RUN_SECRET = "sk-run-SECRET-789"
SECRETS = (ENV_MODEL_SECRET, ENV_OPENAI_SECRET, RUN_SECRET)


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Process settings holding secrets; the base-settings cache is reset around the test."""
    monkeypatch.setenv("OPENAI_API_KEY", ENV_OPENAI_SECRET)
    monkeypatch.setenv("ORCHESTRATOR_MODELS", json.dumps(
        {"paid": {"provider": "openai", "model": "gpt-x", "api_key": ENV_MODEL_SECRET},
         "slowtest": {"provider": "test", "model": "test", "test_latency_s": 0.02}}
    ))
    monkeypatch.setenv("ORCHESTRATOR_MODEL", "slowtest")
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ORCHESTRATOR_CHECKPOINT_URI", raising=False)
    base_settings.cache_clear()
    yield tmp_path
    base_settings.cache_clear()


def _overrides(data_dir: Path) -> dict[str, Any]:
    return {
        "model": "slowtest",
        "data_dir": str(data_dir),
        "review": {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False},
        "models": {"paid2": {"provider": "openai", "model": "gpt-y", "api_key": RUN_SECRET}},
    }


def _assert_clean(blob: bytes | str, where: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret} found in {where}"


async def test_secrets_stay_out_of_checkpoints_and_reports(
    secret_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graph.persistence import CHECKPOINT_FILE, open_checkpointer
    from graph.supervisor import build_graph
    from orchestrator.cli import reporting

    data_dir = secret_env
    settings = Settings(
        model="slowtest", data_dir=data_dir,
        models={**base_settings().models,
                "paid2": ModelConfig(provider="openai", model="gpt-y", api_key=SecretStr(RUN_SECRET))},
    )
    assert settings.models["paid"].api_key is not None  # the secret really is configured
    config: RunnableConfig = {
        "configurable": {"thread_id": "e2e-secret"}, "recursion_limit": 200,
    }
    async with open_checkpointer(settings) as saver:
        graph = build_graph(checkpointer=saver)
        await graph.ainvoke({"goal": "Summarise the refund policy and count open tickets."},
                            config, context=_overrides(data_dir))
        snapshot = await graph.aget_state({"configurable": {"thread_id": "e2e-secret"}})
    values = snapshot.values
    assert not snapshot.next and not snapshot.interrupts  # the run went to the end
    assert any(r.get("status") == "done" for r in values["results"].values()), values["results"]
    for record in values["results"].values():
        if record.get("status") == "done":  # crashed tasks have no metrics, finished ones do
            m = record["metrics"]
            assert m["ended_at"] >= m["started_at"] and m["latency_s"] >= 0 and m["model"] == "slowtest"
            assert m["tokens_in"] > 0 and "cache_hit" in m and "retries" in m

    # Raw bytes of every file in the data directory (checkpoints, WAL, result cache).
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == CHECKPOINT_FILE for p in files)
    for path in files:
        _assert_clean(path.read_bytes(), str(path))
    # Every column of the checkpoint tables, including the writes table.
    with sqlite3.connect(data_dir / CHECKPOINT_FILE) as db:
        for table in ("checkpoints", "writes"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            assert rows, f"{table} is empty"
            for row in rows:
                for cell in row:
                    if isinstance(cell, bytes | str):
                        _assert_clean(cell, f"{table} row")

    # Reports in every format.
    page = data_dir / "report.html"
    assert await reporting.cmd_report(settings, "e2e-secret", True, str(page)) == 0
    report = json.loads(capsys.readouterr().out)
    _assert_clean(json.dumps(report), "report --json")
    html = page.read_text(encoding="utf-8")
    _assert_clean(html, "report --html")
    console = Console(record=True, width=200, file=io.StringIO())
    assert await reporting.cmd_report(settings, "e2e-secret", False, None, console=console) == 0
    _assert_clean(console.export_text(), "report text")
    assert await reporting.cmd_stats(settings, True) == 0
    stats = json.loads(capsys.readouterr().out)
    _assert_clean(json.dumps(stats), "stats --json")
    console = Console(record=True, width=200, file=io.StringIO())
    assert await reporting.cmd_stats(settings, False, console=console) == 0
    _assert_clean(console.export_text(), "stats text")

    # The report describes the run that happened.
    ids = [t["id"] for t in values["tasks"]]
    assert [t["id"] for t in report["tasks"]][: len(ids)] == ids
    assert report["summary"]["tasks_done"] == sum(r.get("status") == "done" for r in values["results"].values())
    assert stats["runs"] == 1 and stats["run_list"][0]["thread_id"] == "e2e-secret"
    roots = [t for t in report["tasks"] if t["depth"] == 0 and t["ran"] and not t["cache_hit"]]
    if len(roots) >= 2:  # independent tasks are dispatched together and overlap in time
        assert report["summary"]["peak_parallelism"] >= 2

    parser = parse_svgs(html)
    for task_id in ids:
        assert task_id in parser.svg_text("task-graph")
        assert f"{task_id} ·" in parser.svg_text("timeline")
