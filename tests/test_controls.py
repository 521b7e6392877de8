"""Production controls on the scripted test model: escalation, budgets, cache, stalls, context."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.types import Command

from core.models.factory import use_model
from core.usage import run_metrics
from graph.assessment import may_finish
from graph.state import Task
from graph.supervisor import build_graph
from tests.scripting import ScriptedTeam, context_of, task, text_of


def config(opts: dict[str, Any], thread: str | None = None) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread or uuid.uuid4().hex, "settings": opts}, "recursion_limit": 300}


async def run(saver: Any, team: ScriptedTeam, payload: Any, cfg: dict[str, Any]) -> Any:
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke(payload, cfg, durability="sync", context=context_of(cfg))
    return await graph.aget_state(cfg)


def always(error: Exception):
    return lambda n: error


# -- fault tolerance ---------------------------------------------------------------------


async def test_escalation_retries_then_reassigns_then_gives_up(saver, options):
    # a writer's task: the agents with its tool (read_file) may take it over
    team = ScriptedTeam([{"tasks": [task("a", agent="writer"), task("b")]}])
    team.fail["a"] = always(ValueError("bad input to parser"))
    state = await run(saver, team, {"goal": "g"}, config(options()))
    a = state.values["results"]["a"]
    steps = [h for h in a["history"] if h.startswith("escalation")]
    assert steps[0] == "escalation: adjusted retry" and steps[2] == "escalation: exhausted"
    assert steps[1].startswith("escalation: reassigned to ") and "writer" not in steps[1]
    assert a["status"] == "failed" and a["settled"] and a["attempts"] == 3
    assert team.calls["a"] == 3  # once per attempt: nothing loops
    # The adjusted retry told the agent what went wrong.
    retry_prompt = [p for p in team.prompts if "[[a]]" in p][1]
    assert "bad input to parser" in retry_prompt
    # The rest of the run is intact: b done, the answer says a is missing.
    assert state.values["results"]["b"]["status"] == "done"
    # Not "completed": a task of the plan failed; the reason names it.
    assert state.values["status"] == "stopped" and "result-b" in state.values["answer"]
    assert state.values["stop_reason"].startswith("tasks not done: a failed")


async def test_transient_errors_are_retried_with_backoff(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    team.fail["a"] = lambda n: ConnectionError("connection reset") if n == 1 else None
    state = await run(saver, team, {"goal": "g"}, config(options()))
    a = state.values["results"]["a"]
    assert a["status"] == "done" and a["metrics"]["retries"] == 1
    assert not any(h.startswith("escalation") for h in a.get("history", []))


async def test_dependents_of_a_failed_task_are_skipped_not_run(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.fail["a"] = always(ValueError("broken"))
    state = await run(saver, team, {"goal": "g"}, config(options()))
    assert state.values["results"]["b"]["status"] == "skipped"
    assert team.calls["b"] == 0
    assert state.values["status"] == "failed"


async def test_manual_intervention_retry_with_an_edited_instruction(saver, options):
    team = ScriptedTeam([{"tasks": [task("a", agent="writer")]}])
    team.fail["a"] = lambda n: ValueError("no way") if n <= 3 else None
    cfg = config(options(review={"failures": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    pending = state.interrupts[0]
    assert pending.value["type"] == "task_failure" and "no way" in pending.value["error"]
    state = await run(saver, team, Command(resume={pending.id: {"action": "edit", "instruction": "Try part a again [[a]]"}}), cfg)
    a = state.values["results"]["a"]
    assert a["status"] == "done" and "escalation: edit by a human" in a["history"]
    assert state.values["tasks"][0]["instruction"] == "Try part a again [[a]]"


async def test_manual_intervention_abort_stops_the_run(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    team.fail["a"] = always(ValueError("no way"))
    cfg = config(options(review={"failures": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    state = await run(saver, team, Command(resume={state.interrupts[0].id: {"action": "abort"}}), cfg)
    assert "aborted by a human" in state.values["stop_reason"]


# -- budgets ------------------------------------------------------------------------------


async def test_run_token_budget_stops_new_tasks_and_synthesizes(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}], tokens=(100, 50))
    state = await run(saver, team, {"goal": "g"}, config(options(budgets={"run_tokens": 300})))
    assert state.values["stop_reason"].startswith("budget: run_tokens (300) reached")
    assert "b" not in state.values["results"] and team.calls["b"] == 0
    assert state.values["results"]["a"]["status"] == "done"
    assert state.values["answer"]  # what was done is still synthesized


async def test_run_cost_budget_uses_the_price_table(saver, options):
    priced = {"test": {"provider": "test", "model": "test", "tool_mode": "structured",
                       "price_in_per_1m": 1_000_000.0, "price_out_per_1m": 0.0}}
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}], tokens=(10, 5))
    state = await run(saver, team, {"goal": "g"}, config(options(models=priced, budgets={"run_cost_usd": 15.0})))
    assert state.values["stop_reason"].startswith("budget: run_cost_usd (15.0)")
    assert state.values["results"]["a"]["metrics"]["cost_usd"] == 10.0


async def test_task_token_budget_fails_the_task(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}], tokens=(100, 50))
    state = await run(saver, team, {"goal": "g"}, config(options(budgets={"task_tokens": 100})))
    a = state.values["results"]["a"]
    assert a["status"] == "failed" and "budget: task_tokens (100)" in a["history"][0]


async def test_task_wall_time_budget_fails_the_task(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}], latency_s=0.5)
    state = await run(saver, team, {"goal": "g"}, config(options(budgets={"task_wall_s": 0.2})))
    assert "budget: task_wall_s (0.2) exceeded" in state.values["results"]["a"]["history"][0]


async def test_round_cap_gives_a_clear_status(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}])
    state = await run(saver, team, {"goal": "g"}, config(options(limits={"max_rounds": 2})))
    assert state.values["stop_reason"] == "limit: max_rounds (2) reached"
    assert "c" not in state.values["results"]


# -- cache --------------------------------------------------------------------------------


async def test_results_are_reused_across_runs_and_show_as_cache_hits(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"])]}
    first_team, second_team = ScriptedTeam([plan]), ScriptedTeam([plan])
    first = await run(saver, first_team, {"goal": "g"}, config(options()))
    second = await run(saver, second_team, {"goal": "g"}, config(options()))
    assert not any(r["metrics"]["cache_hit"] for r in first.values["results"].values())
    assert all(r["metrics"]["cache_hit"] for r in second.values["results"].values())
    assert sum(second_team.calls.values()) == 0
    assert second.values["answer"] == first.values["answer"]


async def test_cache_can_be_turned_off(saver, options):
    plan = {"tasks": [task("a")]}
    await run(saver, ScriptedTeam([plan]), {"goal": "g"}, config(options(cache_results=False)))
    team = ScriptedTeam([plan])
    state = await run(saver, team, {"goal": "g"}, config(options(cache_results=False)))
    assert team.calls["a"] == 1 and not state.values["results"]["a"]["metrics"]["cache_hit"]


# -- adapting and stalls --------------------------------------------------------------------


async def test_supervisor_revises_the_remaining_plan(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.assessment = {"decision": "revise", "reason": "b is not needed, c is",
                       "tasks": [task("c", deps=["a"])]}
    state = await run(saver, team, {"goal": "g"}, config(options(adaptive_replanning=True, limits={"max_plan_revisions": 1})))
    assert [t["id"] for t in state.values["tasks"]] == ["a", "c"]
    assert len(state.values["plan_versions"]) == 2
    assert state.values["plan_versions"][1]["reason"].startswith("revised: b is not needed")
    assert team.calls["b"] == 0 and team.calls["c"] == 1


async def test_a_revision_that_changes_nothing_counts_and_stops(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}
    team = ScriptedTeam([plan])
    team.assessment = {"decision": "revise", "reason": "same", "tasks": [task("b", deps=["a"]), task("c", deps=["b"])]}
    state = await run(saver, team, {"goal": "g"}, config(options(adaptive_replanning=True, limits={"max_plan_revisions": 1})))
    assert len(state.values["plan_versions"]) == 1  # no new version for a no-op revision
    assert state.values["revisions"] == 1
    assert state.values["status"] == "completed"


async def test_supervisor_can_finish_early(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.assessment = {"decision": "finish", "reason": "a answers it"}
    state = await run(saver, team, {"goal": "g"}, config(options(adaptive_replanning=True)))
    assert state.values["results"]["b"]["status"] == "skipped"
    assert state.values["stop_reason"].startswith("supervisor finished early")


async def test_a_finish_verdict_never_skips_a_failed_tasks_retry(saver, options):
    # Only a failure so far: nothing to judge, so no assessment runs and the retry does.
    team = ScriptedTeam([{"tasks": [task("a")]}])
    team.fail["a"] = lambda n: ValueError("first try broke") if n == 1 else None
    judged: list[str] = []
    team.model.responses["Assessment"] = lambda m: judged.append(text_of(m)) or {
        "decision": "finish", "reason": "nothing left"}
    state = await run(saver, team, {"goal": "g"}, config(options(adaptive_replanning=True)))
    assert state.values["results"]["a"]["status"] == "done"
    assert state.values["status"] == "completed" and not judged


def test_finish_needs_a_done_result_and_no_pending_retry() -> None:
    done = {"a": {"status": "done"}}
    retry = {"b": {"status": "pending", "attempts": 1}}
    fresh = Task.model_validate(task("c"))
    assert may_finish({**done}, [fresh])
    assert not may_finish({}, [fresh])
    assert not may_finish({**done, **retry}, [Task.model_validate(task("b")), fresh])


async def test_time_waiting_at_the_plan_review_is_not_run_latency(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    cfg = config(options(review={"plan": True}, budgets={"run_wall_s": 1.0}))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        await asyncio.sleep(1.5)  # the human reads the plan, longer than the wall budget
        await graph.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg,
                            durability="sync", context=context_of(cfg))
    values = (await graph.aget_state(cfg)).values
    assert values["status"] == "completed" and values["results"]["a"]["status"] == "done"
    assert values["waited_s"] >= 1.5
    metrics = run_metrics(values)
    span = values["finished_at"] - values["started_at"]
    assert metrics["latency_s"] == pytest.approx(span - values["waited_s"], abs=1e-3)


# -- context management ------------------------------------------------------------------------


async def test_worker_prompts_stay_within_the_model_window(saver, options):
    window = 1500
    small = {"test": {"provider": "test", "model": "test", "tool_mode": "structured",
                      "context_window": window, "max_tokens": 200}}
    huge = "lorem ipsum dolor " * 3000  # ~13k tokens per dependency result
    team = ScriptedTeam([{"tasks": [task("a"), task("b"), task("c", deps=["a", "b"])]}])
    original = team._step

    def long_answers(messages):
        step = original(messages)
        return {**step, "answer": step["answer"] + " " + huge}

    team.model.responses["AgentStep"] = long_answers
    state = await run(saver, team, {"goal": "g"}, config(options(models=small)))
    assert state.values["results"]["c"]["status"] == "done"
    prompt_c = next(p for p in team.prompts if "[[c]]" in p)
    assert "result-a" in prompt_c and "result-b" in prompt_c  # both dependencies are represented
    for prompt in team.prompts:
        assert count_tokens_approximately([("human", prompt)]) <= window
