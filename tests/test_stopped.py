"""A run that ends with tasks of its plan not done is ``stopped``, not ``completed``: in the
state (what SDK clients read), the CLI's JSON and exit code, the report and the stats."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.models.factory import use_model
from graph.supervisor import build_graph
from graph.synthesis import final_status
from orchestrator.cli import main
from orchestrator.cli.session import EXIT
from orchestrator.observability import build_report, run_status
from tests.scripting import ScriptedTeam, context_of, task

THREE = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}
"""Three tasks in a chain: at 150 tokens a task, a 300-token budget stops the run after a."""


def config(opts: dict[str, Any]) -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex, "settings": opts}, "recursion_limit": 300}


async def run(saver: Any, team: ScriptedTeam, cfg: dict[str, Any]) -> Any:
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
    return await graph.aget_state(cfg)


async def test_a_run_stopped_by_its_token_budget_ends_stopped_with_the_budget_named(saver, options):
    team = ScriptedTeam([THREE], tokens=(100, 50))
    state = await run(saver, team, config(options(budgets={"run_tokens": 300})))
    values = state.values
    assert values["results"]["a"]["status"] == "done" and team.calls["b"] == team.calls["c"] == 0
    assert values["status"] == "stopped"  # the SDK's final state
    assert values["stop_reason"].startswith("budget: run_tokens (300) reached")
    assert "Stopped before the plan was done: budget: run_tokens (300)" in values["answer"]
    report = build_report("t", values)
    assert report["status"] == "stopped" and report["stop_reason"].startswith("budget: run_tokens")


async def test_a_run_whose_tasks_all_finish_is_completed(saver, options):
    team = ScriptedTeam([THREE], tokens=(100, 50))
    state = await run(saver, team, config(options()))
    assert state.values["status"] == "completed" and state.values["stop_reason"] == ""
    assert "Stopped" not in state.values["answer"]


async def test_a_run_with_nothing_done_is_failed_with_the_reason(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    team.fail["a"] = lambda n: ValueError("no way")
    state = await run(saver, team, config(options()))
    assert state.values["status"] == "failed"
    assert state.values["stop_reason"].startswith("tasks not done: a failed: ValueError: no way")


def test_threads_saved_as_completed_with_tasks_not_done_read_as_stopped():
    values = {"status": "completed", "stop_reason": "limit: max_rounds (2) reached",
              "tasks": [{"id": "a"}, {"id": "b"}], "results": {"a": {"status": "done"}}}
    assert final_status(values) == ("stopped", "limit: max_rounds (2) reached")
    assert run_status(values) == "stopped"
    values["stop_reason"] = ""
    values["results"]["b"] = {"status": "skipped", "error": "not needed: enough"}
    assert final_status(values) == ("stopped", "tasks not done: b skipped: not needed: enough")
    values["results"]["b"] = {"status": "done"}
    assert final_status(values) == ("completed", "")


def test_the_cli_exits_non_zero_on_a_stopped_run_and_names_the_budget(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    config_file = tmp_path / "orchestrator.toml"
    config_file.write_text(
        'model = "test"\nadaptive_replanning = false\nverify_results = false\n'
        '[models.test]\nprovider = "test"\nmodel = "test"\ntool_mode = "structured"\n'
        "[budgets]\nrun_tokens = 300\n"
    )
    team = ScriptedTeam([THREE], tokens=(100, 50))
    with use_model(team.model):
        code = main(["--config", str(config_file), "run", "g", "--auto-approve", "--json", "--thread", "s1"])
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT["stopped"] == 4
    assert out["status"] == "stopped" and out["stop_reason"].startswith("budget: run_tokens (300)")
    assert [t["status"] for t in out["plan"]] == ["done", "pending", "pending"]

    with use_model(team.model):
        code = main(["--config", str(config_file), "show", "s1"])
    text = capsys.readouterr().out
    assert code == 4 and "stopped" in text and "budget: run_tokens (300)" in text
    assert "Why run: budget" in " ".join(text.split())  # the diagnosis, under the answer
