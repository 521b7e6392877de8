"""The runner and ``orchestrator eval`` end to end on the test model, offline.

The target runs the real supervisor graph with the deterministic test model; network
access is refused for the whole module, so an accidental call to the LangSmith API fails.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.models.test_model import TestChatModel
from core.settings import Settings, load_settings
from evals import runner
from evals.datasets import Thresholds, load_dataset
from evals.runner import EvalReport, ExampleResult, gates, run_eval, summarize
from evals.target import db_changes
from orchestrator.cli import eval_command
from orchestrator.cli.commands import UsageError
from tools.customer_service import build_sample_db


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every non-local connection (the eval must run offline)."""
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family == socket.AF_UNIX or (
            isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")
        ):
            return real_connect(sock, address)
        raise AssertionError(f"network access attempted: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)
    yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_command.add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(["eval", *argv])


async def test_offline_eval_runs_the_graph_and_scores_the_plan(settings: Settings) -> None:
    report = await run_eval("planning", settings, model="test", limit=2, offline=True)
    assert not report.uploaded and report.model == "test"
    assert [ex.id for ex in report.examples] == ["planning-01", "planning-02"]
    assert all(ex.status == "planned" and ex.plan for ex in report.examples)
    assert {"plan_valid", "plan_dependencies", "plan_properties", "tokens", "latency_s"} <= set(
        report.summary
    )
    assert report.summary["plan_valid"].n == 2
    assert {g.key for g in report.gates} == {
        "plan_valid",
        "plan_dependencies",
        "plan_properties",
        "latency_s",
    }
    assert not list((Path(settings.data_dir) / "evals" / "runs").glob("*/*"))  # run data cleaned up
    # The structured calls the planner made are counted in the report (issue 13's tally).
    assert report.structured["calls"] >= 2 and report.structured["failures"] == 0
    assert report.structured["invalid_outputs"] == report.structured["repair_retries"] == 0
    assert report.to_json()["structured"] == report.structured


async def test_judged_dataset_uses_the_given_judge(settings: Settings) -> None:
    verdict = {"reasoning": "Thus, the score should be: false.", "score": False}
    judge = TestChatModel(responses={"score": verdict})
    report = await run_eval("research", settings, model="test", judge=judge, limit=1, offline=True)
    (example,) = report.examples
    assert example.status == "completed" and example.answer
    assert set(example.scores) >= {
        "correctness",
        "groundedness",
        "trajectory_agents",
        "key_facts",
        "completed",
    }
    assert example.scores["correctness"] == 0.0  # the scripted judge rejects every answer
    assert example.scores["groundedness"] == 0.0


def test_gates_compare_means_with_the_thresholds() -> None:
    rows = [
        ExampleResult("a", "g", {"plan_valid": 1.0, "latency_s": 10.0, "correctness": None}, {}),
        ExampleResult("b", "g", {"plan_valid": 0.0, "latency_s": 30.0, "correctness": None}, {}),
    ]
    summary = summarize(rows)
    assert summary["plan_valid"].mean == 0.5 and "correctness" not in summary
    dataset = load_dataset("planning")
    dataset.entry.thresholds = Thresholds(
        min={"plan_valid": 0.5, "correctness": 0.1}, max={"latency_s": 15.0}
    )
    result = {g.key: g.passed for g in gates(dataset, summary)}
    assert result == {"plan_valid": True, "correctness": False, "latency_s": False}


async def test_cli_writes_json_and_exits_by_the_thresholds(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "results.json"
    code = await eval_command.dispatch(
        cli(
            "--dataset",
            "planning",
            "--model",
            "test",
            "--limit",
            "1",
            "--json",
            "--output",
            str(out),
        ),
        settings,
    )
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    assert printed["results_file"] == str(out)
    assert (
        written["datasets"][0]["dataset"] == "planning"
        and written["datasets"][0]["examples"][0]["id"] == "planning-01"
    )
    assert code == (0 if written["passed"] else 1)

    # With thresholds nobody can meet, the exit code is 1; with none, it is 0.
    def with_thresholds(thresholds: Thresholds) -> Any:
        def load(name: str) -> Any:
            dataset = load_dataset(name)
            dataset.entry.thresholds = thresholds
            return dataset

        return load

    monkeypatch.setattr(
        runner, "load_dataset", with_thresholds(Thresholds(min={"plan_valid": 2.0}))
    )
    assert (
        await eval_command.dispatch(
            cli("--dataset", "planning", "--model", "test", "--limit", "1", "--output", str(out)),
            settings,
        )
        == 1
    )
    monkeypatch.setattr(runner, "load_dataset", with_thresholds(Thresholds()))
    assert (
        await eval_command.dispatch(
            cli("--dataset", "planning", "--model", "test", "--limit", "1", "--output", str(out)),
            settings,
        )
        == 0
    )
    assert json.loads(out.read_text())["passed"] is True


async def test_cli_usage_errors_and_other_commands(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await eval_command.dispatch(argparse.Namespace(command="run"), settings) is None
    with pytest.raises(UsageError, match="unknown dataset"):
        await eval_command.dispatch(cli("--dataset", "nope"), settings)
    with pytest.raises(UsageError, match="no example"):
        await eval_command.dispatch(
            cli("--dataset", "planning", "--model", "test", "--example", "nope"), settings
        )
    assert await eval_command.dispatch(cli("--list", "--json"), settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in listed} >= {"planning", "software", "research", "customer_service"}


def test_db_changes_sees_refunds_and_ticket_updates(tmp_path: Path) -> None:
    db = tmp_path / "customer_service.sqlite"
    assert db_changes(db) is None
    build_sample_db(db)
    assert db_changes(db) == {"refunds": [], "tickets": {}, "notes_added": {}}
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO refunds (order_id, amount_cents, reason, created_at) VALUES ('O1008', 5205, 'unopened', 'now')"
    )
    conn.execute("UPDATE tickets SET status='escalated' WHERE id='T503'")
    conn.execute(
        "INSERT INTO ticket_notes (ticket_id, created_at, author, body) VALUES ('T503', 'now', 'agent', 'x')"
    )
    conn.commit()
    conn.close()
    changes = db_changes(db)
    assert changes == {
        "refunds": [{"order_id": "O1008", "amount_cents": 5205, "reason": "unopened"}],
        "tickets": {"T503": {"from": "open", "to": "escalated"}},
        "notes_added": {"T503": 1},
    }


def test_report_json_round_trips() -> None:
    report = EvalReport("d", "v1-x", "run", "test", None, "exp", False, "t", 1.0, [], {}, [])
    assert report.passed and json.loads(json.dumps(report.to_json()))["passed"] is True


class FakeLangSmith:
    """Records what the runner asks of a LangSmith client."""

    def __init__(self, existing: bool, present: int = 0) -> None:
        self.existing, self.present = existing, present
        self.created: list[Any] = []
        self.dataset_id = "00000000-0000-4000-8000-000000000001"
        self.uploaded: list[dict[str, Any]] = []

    def has_dataset(self, *, dataset_name: str) -> bool:
        return self.existing

    def read_dataset(self, *, dataset_name: str) -> Any:
        return argparse.Namespace(id=self.dataset_id)

    def create_dataset(self, name: str, **kwargs: Any) -> Any:
        self.created.append((name, kwargs))
        return argparse.Namespace(id=self.dataset_id)

    def list_examples(self, *, dataset_id: Any) -> list[Any]:
        ids = [e.id for e in load_dataset("planning").to_langsmith()]
        return [argparse.Namespace(id=i) for i in ids[: self.present]]

    def create_examples(self, *, dataset_id: Any, examples: list[dict[str, Any]]) -> None:
        self.uploaded += examples


def test_sync_to_langsmith_creates_the_version_once() -> None:
    dataset = load_dataset("planning")
    fresh = FakeLangSmith(existing=False)
    assert runner.sync_to_langsmith(fresh, dataset) == fresh.dataset_id
    assert fresh.created[0][0] == f"agent-orchestrator/planning@{dataset.version}"
    assert len(fresh.uploaded) == len(dataset.examples)
    partial = FakeLangSmith(existing=True, present=5)
    runner.sync_to_langsmith(partial, dataset)
    assert not partial.created and len(partial.uploaded) == len(dataset.examples) - 5


async def test_a_run_cut_off_by_the_time_limit_is_a_time_out(tmp_path: Path) -> None:
    """Its state may say anything (running, nothing yet); the example is a time-out."""
    from evals.target import TargetConfig, run_goal

    out = await run_goal("Write a haiku about SQLite", TargetConfig(root=tmp_path, model="test", timeout_s=0.001))
    assert out["status"] == "time-out" and out["error"] == "timed out after 0.001s"
