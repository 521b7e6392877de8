"""Reading runs back from the SQLite checkpointer, and the ``report`` / ``stats`` commands.

Runs are written by a one-node graph over the supervisor's state schema, so these tests
exercise the checkpoint round trip and the CLI without needing any model.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from pydantic import SecretStr

from core.redact import MASK
from core.settings import ModelConfig, Settings
from graph.persistence import open_checkpointer
from graph.state import OrchestratorState
from orchestrator.cli import reporting
from orchestrator.observability import runs as runs_module
from orchestrator.observability.runs import list_threads, read_run, read_runs
from tests.html_text import parse_svgs

SECRET = "sk-test-SECRET-123"
OPTION_SECRET = "sk-option-SECRET-000"


def _metrics(start: float, end: float, tokens_in: int = 10, tokens_out: int = 5) -> dict[str, Any]:
    return {"model": "test", "started_at": start, "ended_at": end, "latency_s": end - start,
            "tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": 0.0, "retries": 0,
            "cache_hit": False, "model_calls": 1}


def run_state(t0: float, goal: str, error: str | None = None) -> dict[str, Any]:
    """a ∥ b -> c; c fails with ``error`` when given."""
    tasks = [
        {"id": "a", "agent": "researcher", "instruction": "find", "depends_on": []},
        {"id": "b", "agent": "analyst", "instruction": "count", "depends_on": []},
        {"id": "c", "agent": "writer", "instruction": "write", "depends_on": ["a", "b"]},
    ]
    results = {
        "a": {"task": tasks[0], "status": "done", "output": "A", "metrics": _metrics(t0 + 1, t0 + 3),
              "history": ["verification passed"]},
        "b": {"task": tasks[1], "status": "done", "output": "B", "metrics": _metrics(t0 + 1, t0 + 2)},
        "c": {"task": tasks[2], "status": "failed" if error else "done", "output": "C", "error": error,
              "metrics": _metrics(t0 + 3, t0 + 5), "history": ["verification failed: invented a number"]},
    }
    return {"goal": goal, "tasks": tasks, "results": results, "status": "failed" if error else "completed",
            "answer": "The answer.", "started_at": t0, "finished_at": t0 + 6,
            "plan_versions": [{"version": 1, "reason": "initial", "tasks": tasks}]}


def writer_graph(checkpointer: Any) -> Any:
    """A graph over the supervisor's state that only checkpoints its input."""
    builder = StateGraph(OrchestratorState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    return builder.compile(checkpointer=checkpointer)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("ORCHESTRATOR_CHECKPOINT_URI", raising=False)
    return Settings(model="test", data_dir=tmp_path,
                    models={"paid": ModelConfig(provider="openai", model="gpt-x", api_key=SecretStr(SECRET))})


@pytest.fixture
async def database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Two runs in the SQLite checkpoint file; the CLI reads them through the same schema."""
    async with open_checkpointer(settings) as saver:
        g = writer_graph(saver)
        leaky = run_state(2000.0, "second goal", error=f"HTTP 401 with key {SECRET}")
        # A run started with a key in its own overrides, which the answer then echoes.
        leaky["options"] = {"models": {"mine": {"provider": "openai", "api_key": OPTION_SECRET}}}
        leaky["answer"] = f"Used {OPTION_SECRET}."
        await g.ainvoke(leaky, {"configurable": {"thread_id": "run-b"}})
        await g.ainvoke(run_state(1000.0, "first goal"), {"configurable": {"thread_id": "run-a"}})

    @asynccontextmanager
    async def reader(s: Settings) -> AsyncIterator[tuple[Any, Any]]:
        async with open_checkpointer(s) as saver:
            yield writer_graph(saver), saver

    monkeypatch.setattr(runs_module, "open_run_reader", reader)
    return settings


async def test_runs_round_trip_through_sqlite(database: Settings) -> None:
    async with open_checkpointer(database) as saver:
        assert await list_threads(saver) == ["run-a", "run-b"]
        g = writer_graph(saver)
        view = await read_run(g, "run-a")
        assert view is not None and view.values["goal"] == "first goal"
        assert set(view.values["results"]) == {"a", "b", "c"} and view.next_nodes == ()
        assert await read_run(g, "missing") is None
        ordered = await read_runs(g, saver)
        assert [v.thread_id for v in ordered] == ["run-a", "run-b"]  # by start time, not name
        assert [v.thread_id for v in await read_runs(g, saver, limit=1)] == ["run-b"]


async def test_list_threads_on_every_backend(saver: Any) -> None:
    """SQLite and PostgreSQL (the shared ``saver`` fixture); the database may hold other runs."""
    ids = [f"obs-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    g = writer_graph(saver)
    for i, thread_id in enumerate(ids):
        await g.ainvoke(run_state(1000.0 + i, f"goal {i}"), {"configurable": {"thread_id": thread_id}})
    assert set(ids) <= set(await list_threads(saver))
    view = await read_run(g, ids[1])
    assert view is not None and view.values["goal"] == "goal 1" and len(view.values["results"]) == 3


async def test_list_threads_falls_back_to_alist_for_other_savers() -> None:
    saver = InMemorySaver()
    g = writer_graph(saver)
    await g.ainvoke(run_state(1.0, "g"), {"configurable": {"thread_id": "x"}})
    await g.ainvoke(run_state(2.0, "g"), {"configurable": {"thread_id": "y"}})
    assert await list_threads(saver) == ["x", "y"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").add_argument("goal")
    reporting.add_parsers(sub)
    return parser.parse_args(argv)


async def test_dispatch_ignores_other_commands(settings: Settings) -> None:
    assert await reporting.dispatch(_parse(["run", "x"]), settings) is None
    args = _parse(["report", "t1", "--json", "--html", "out.html", "--width", "30"])
    assert (args.thread, args.json, args.html, args.width) == ("t1", True, "out.html", 30)
    assert _parse(["stats", "--last", "5"]).last == 5


async def test_report_json_is_redacted_and_complete(database: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await reporting.dispatch(_parse(["report", "run-b", "--json"]), database) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and OPTION_SECRET not in out and MASK in out
    report = json.loads(out)
    assert report["answer"] == f"Used {MASK}."
    assert report["thread_id"] == "run-b" and report["status"] == "failed"
    assert [t["id"] for t in report["tasks"]] == ["a", "b", "c"]
    s = report["summary"]
    assert s["peak_parallelism"] == 2 and s["error_rate"] == round(1 / 3, 6)
    assert s["verification_failure_rate"] == 0.5 and s["latency_p50_s"] == 2.0
    assert report["tasks"][2]["error"] == f"HTTP 401 with key {MASK}"


async def test_report_text_and_html(database: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page_path = tmp_path / "out" / "run.html"
    assert await reporting.dispatch(_parse(["report", "run-b", "--html", str(page_path)]), database) == 0
    text = capsys.readouterr().out
    assert SECRET not in text and "Timeline" in text and "Task graph" in text and "HTML report written" in text
    page = page_path.read_text(encoding="utf-8")
    assert SECRET not in page and OPTION_SECRET not in page and MASK in page
    assert OPTION_SECRET not in text

    parser = parse_svgs(page)
    for task_id in ("a", "b", "c"):
        assert f" {task_id} " in parser.svg_text("task-graph") + " " or task_id in parser.svg_text("task-graph").split()
        assert f"{task_id} ·" in parser.svg_text("timeline")


async def test_report_of_unknown_thread_is_a_usage_error(database: Settings) -> None:
    from orchestrator.cli.commands import UsageError

    with pytest.raises(UsageError, match="no thread 'nope'"):
        await reporting.dispatch(_parse(["report", "nope"]), database)


async def test_stats_json_and_text(database: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await reporting.dispatch(_parse(["stats", "--json"]), database) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and OPTION_SECRET not in out
    stats = json.loads(out)
    assert stats["runs"] == 2 and stats["runs_by_status"] == {"completed": 1, "failed": 1}
    assert stats["tasks"] == {"total": 6, "done": 5, "failed": 1, "skipped": 0}
    assert stats["error_rate"] == round(1 / 6, 6) and stats["completion_rate"] == round(5 / 6, 6)
    assert stats["verification"] == {"passed": 2, "failed": 2, "failure_rate": 0.5}
    assert stats["latency_per_step_s"]["p50"] == 2.0 and stats["latency_per_step_s"]["p95"] == 2.0
    assert stats["per_workflow"]["tokens"]["mean"] == 45
    assert [r["thread_id"] for r in stats["run_list"]] == ["run-a", "run-b"]

    assert await reporting.dispatch(_parse(["stats", "--last", "1"]), database) == 0
    text = capsys.readouterr().out
    assert "1 runs" in text and "run-b" in text and "run-a" not in text and SECRET not in text
