"""The supervisor end to end on the scripted test model: parallelism, order, repair, review."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import pytest
from langgraph.types import Command

from core.models.factory import use_model
from core.review import ReviewDecision, resume_value
from graph.history import ForkEditError, fork_checkpoint
from graph.supervisor import build_graph
from tests.scripting import ScriptedTeam, context_of, task


def config(thread: str, opts: dict[str, Any]) -> dict[str, Any]:
    # Unique per test run: a PostgreSQL database outlives the test session.
    thread_id = f"{thread}-{uuid.uuid4().hex[:8]}"
    return {"configurable": {"thread_id": thread_id, "settings": opts}, "recursion_limit": 200}


async def run(saver: Any, team: ScriptedTeam, payload: Any, cfg: dict[str, Any]) -> Any:
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke(payload, cfg, durability="sync", context=context_of(cfg))
    return await graph.aget_state(cfg)


async def test_independent_tasks_run_in_parallel(saver, options):
    team = ScriptedTeam([{"tasks": [task(x) for x in "abcd"]}], latency_s=0.3)
    state = await run(saver, team, {"goal": "four parts"}, config("par", options()))
    results = state.values["results"]
    assert {r["status"] for r in results.values()} == {"done"}
    spans = [(r["metrics"]["started_at"], r["metrics"]["ended_at"]) for r in results.values()]
    # Every task started before any finished: the four really overlapped in time.
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert state.values["status"] == "completed"
    assert all(f"result-{x}" in state.values["answer"] for x in "abcd")


async def test_max_concurrency_bounds_each_round(saver, options):
    team = ScriptedTeam([{"tasks": [task(x) for x in "abcd"]}])
    state = await run(saver, team, {"goal": "g"}, config("cap", options(limits={"max_concurrency": 2})))
    results = state.values["results"]
    assert all(r["status"] == "done" for r in results.values())
    # At no moment were more than two tasks running.
    spans = [(r["metrics"]["started_at"], r["metrics"]["ended_at"]) for r in results.values()]
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak <= 2
    retried = {k: r.get("history") for k, r in results.items() if r.get("history")}
    if retried:  # seen twice in full-suite CI runs on PostgreSQL; keep the evidence visible
        warnings.warn(f"tasks were retried: {retried}", stacklevel=1)
    assert state.values["rounds"] == 2 + len(retried), retried


async def test_dependencies_run_in_order_and_see_results(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["a", "b"])]}
    team = ScriptedTeam([plan])
    state = await run(saver, team, {"goal": "chain"}, config("deps", options()))
    m = {k: r["metrics"] for k, r in state.values["results"].items()}
    assert m["a"]["ended_at"] <= m["b"]["started_at"] and m["b"]["ended_at"] <= m["c"]["started_at"]
    prompt_c = next(p for p in team.prompts if "[[c]]" in p)
    assert "result-a" in prompt_c and "result-b" in prompt_c
    prompt_a = next(p for p in team.prompts if "[[a]]" in p)
    assert "result-" not in prompt_a


async def test_invalid_plan_goes_back_to_the_planner_with_the_error(saver, options):
    cyclic = {"tasks": [task("a", deps=["b"]), task("b", deps=["a"])]}
    good = {"tasks": [task("a"), task("b", deps=["a", "ghost"])]}  # dangling dep: repaired
    team = ScriptedTeam([cyclic, good])
    state = await run(saver, team, {"goal": "g"}, config("repair", options()))
    assert state.values["planner_attempts"] == 2
    assert "cycle" in team.planner_prompts[1]
    assert state.values["tasks"][1]["depends_on"] == ["a"]
    assert "dropped unknown dependency 'ghost'" in state.values["plan_versions"][-1]["reason"]
    assert state.values["status"] == "completed"


async def test_planner_cannot_name_an_unknown_agent(saver, options):
    # The plan schema's enum refuses it; the structured-output retry asks again.
    team = ScriptedTeam([{"tasks": [task("a", agent="poet")]}, {"tasks": [task("a")]}])
    state = await run(saver, team, {"goal": "g"}, config("enum", options()))
    assert state.values["tasks"][0]["agent"] == "writer"
    assert state.values["status"] == "completed"


async def test_planner_that_never_succeeds_falls_back_to_one_task(saver, options):
    team = ScriptedTeam([{"tasks": []}])
    state = await run(saver, team, {"goal": "just answer"}, config("fallback", options()))
    assert len(state.values["tasks"]) == 1
    assert state.values["tasks"][0]["instruction"] == "just answer"
    assert state.values["status"] == "completed"


async def test_plan_review_edit_then_resume(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b")]}])
    cfg = config("review", options(review={"plan": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    assert state.next == ("review_plan",)
    pending = state.interrupts[0]
    assert pending.value["type"] == "plan_review" and len(pending.value["tasks"]) == 2

    edited = [task("x"), task("y", agent="poet", deps=["x"])]  # unknown agent: repaired
    answer = resume_value(pending.value, ReviewDecision("edit", tasks=edited))
    state = await run(saver, team, Command(resume={pending.id: answer}), cfg)
    assert [t["id"] for t in state.values["tasks"]] == ["x", "y"]
    assert set(state.values["results"]) == {"x", "y"}
    assert team.calls["a"] == 0 and team.calls["x"] == 1
    assert state.values["plan_versions"][-1]["reason"].startswith("edited by a human")
    assert "unknown agent 'poet'" in state.values["plan_versions"][-1]["reason"]
    assert state.values["tasks"][1]["agent"] != "poet"


async def test_plan_review_reject_replans_with_feedback(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}, {"tasks": [task("b")]}])
    cfg = config("reject", options(review={"plan": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    pending = state.interrupts[0]
    answer = resume_value(pending.value, ReviewDecision("reject", text="use a writer for part b"))
    state = await run(saver, team, Command(resume={pending.id: answer}), cfg)
    assert "use a writer for part b" in team.planner_prompts[-1]
    assert state.interrupts and state.interrupts[0].value["tasks"][0]["id"] == "b"


async def test_invalid_edited_plan_asks_again_and_keeps_the_plan(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    cfg = config("badedit", options(review={"plan": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    pending = state.interrupts[0]
    cyclic = [task("x", deps=["x2"]), task("x2", deps=["x"])]
    state = await run(saver, team, Command(resume={pending.id: resume_value(pending.value, ReviewDecision("edit", tasks=cyclic))}), cfg)
    assert state.interrupts and "cycle" in state.interrupts[0].value["error"]
    assert [t["id"] for t in state.values["tasks"]] == ["a"]


async def test_fork_from_an_earlier_checkpoint_leaves_the_original_intact(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}, {"tasks": [task("b")]}])
    cfg = config("fork", options(review={"plan": True}))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        first = await graph.aget_state(cfg)
        pending = first.interrupts[0]
        await graph.ainvoke(Command(resume={pending.id: {"action": "approve"}}), cfg, durability="sync")
        done = await graph.aget_state(cfg)
        assert set(done.values["results"]) == {"a"}
        history = [s async for s in graph.aget_state_history(cfg)]
        # Fork at the plan review and decide differently this time.
        at_review = next(s for s in history if s.next == ("review_plan",))
        fork_cfg = await fork_checkpoint(saver, at_review.config)
        assert (await graph.aget_state(fork_cfg)).next == ("review_plan",)
        assert (await graph.aget_state(cfg)).config == fork_cfg  # the fork is now the newest
        await graph.ainvoke(None, fork_cfg, durability="sync")  # replay from the fork
        forked = await graph.aget_state(cfg)
        assert forked.interrupts, "the fork asks the review question again"
        await graph.ainvoke(
            Command(resume={forked.interrupts[0].id: {"action": "reject", "feedback": "other"}}),
            fork_cfg, durability="sync",
        )
        latest = await graph.aget_state(cfg)
    assert latest.values["tasks"][0]["id"] == "b"  # the branch replanned
    original = await graph.aget_state(done.config)
    assert original.values["answer"] == done.values["answer"]
    assert set(original.values["results"]) == {"a"}


async def test_fork_mid_run_copies_exactly_that_state_and_continues(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}
    team = ScriptedTeam([plan])
    # No result cache: the branch must really run b and c again (with the thread's own settings,
    # which a fork keeps, their cached results would be reused).
    cfg = config("midfork", options(cache_results=False))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        history = [s async for s in graph.aget_state_history(cfg)]
        # A checkpoint after a finished, before b started: the blackboard holds a only.
        middle = next(s for s in history if s.next == ("dispatch",)
                      and {k for k, r in s.values["results"].items() if r["status"] == "done"} == {"a"})
        fork_cfg = await fork_checkpoint(saver, middle.config, {"feedback": "edited at the fork"})
        forked = await graph.aget_state(fork_cfg)
        assert forked.values["results"] == middle.values["results"]
        assert forked.next == middle.next and forked.values["feedback"] == "edited at the fork"
        calls_before = dict(team.calls)
        await graph.ainvoke(None, fork_cfg, durability="sync")
        final = await graph.aget_state(cfg)
    assert final.values["status"] == "completed"
    assert team.calls["a"] == calls_before["a"]  # a is not run again on the branch
    assert team.calls["b"] == calls_before["b"] + 1 and team.calls["c"] == calls_before["c"] + 1
    with pytest.raises(ForkEditError):
        await fork_checkpoint(saver, middle.config, {"results": {}})
