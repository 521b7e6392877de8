"""Failure diagnosis by code: one scripted run per failure mode, made to fail that way, is
diagnosed with that mode and its evidence; a run that completes has none.

Budgets, time-outs, a human's abort, the supervisor's early finish, reassignment, the
planner's fallback, a failed verification and an empty model answer are the product's own
mechanisms on the scripted test model (tests/scripting.py). Own tests wrong and the
sandbox's refusal run the real coder flow and sandbox (scripted replies; for the refusal, a
host with no isolation mode). A tool's, a lost dependency's and a crashed attempt's errors
are raised where production raises them — in the worker's model call — with the texts the
tools and agents write.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.tools import ToolException
from langgraph.types import Command

from core.models.factory import use_model
from graph.supervisor import build_graph
from orchestrator.observability import build_report
from orchestrator.observability.diagnosis import TAXONOMY, asked_names, classify, diagnose
from orchestrator.observability.stats import aggregate, summarize_run, task_rows
from tests.scripting import ScriptedTeam, context_of, task


def config(opts: dict[str, Any], thread: str | None = None) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread or uuid.uuid4().hex, "settings": opts}, "recursion_limit": 300}


async def run(saver: Any, team: ScriptedTeam, cfg: dict[str, Any], payload: Any = None) -> Any:
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke(payload or {"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
    return await graph.aget_state(cfg)


def always(error: Exception):
    return lambda n: error


def why(values: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The run's diagnosis and its tasks' by id, as the report carries them."""
    report = build_report("t", values)
    d = report["diagnosis"]
    return d["run"], {t["task_id"]: t for t in d["tasks"]}


class Answering(ScriptedTeam):
    """A scripted team whose worker answers ``answers[marker]`` as its final answer (in a
    tool-loop step and in a flow's final-answer reply alike)."""

    def __init__(self, plans: Any, answers: dict[str, str], **kw: Any) -> None:
        self.answers = answers
        super().__init__(plans, **kw)

    def _step(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        step = super()._step(messages)
        marker = self._marker(messages)
        if marker in self.answers:
            step["answer"] = self.answers[marker]
        return step

    def _final(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        marker = self._marker(messages)
        return {"answer": self.answers.get(marker, f"result-{marker}"), "citations": []}


# -- a completed run ------------------------------------------------------------------------


async def test_a_completed_run_has_no_diagnosis(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    state = await run(saver, team, config(options()))
    assert state.values["status"] == "completed"
    assert diagnose(state.values) == {"run": None, "tasks": []}
    assert build_report("t", state.values)["diagnosis"] == {"run": None, "tasks": []}


# -- product modes --------------------------------------------------------------------------


async def test_budget(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}], tokens=(100, 50))
    state = await run(saver, team, config(options(budgets={"run_tokens": 300})))
    run_why, tasks = why(state.values)
    assert run_why is not None and run_why["mode"] == "budget" and run_why["source"] == "stop_reason"
    assert "run_tokens (300)" in run_why["evidence"] and run_why["blocks"] == ["b", "c"]
    assert tasks == {}  # a finished, b and c never started: no task failed


async def test_time_out(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}], latency_s=0.5)
    state = await run(saver, team, config(options(budgets={"task_wall_s": 0.2})))
    run_why, tasks = why(state.values)
    assert tasks["a"]["mode"] == "time_out" and "task_wall_s (0.2) exceeded" in tasks["a"]["evidence"]
    assert run_why is not None and run_why["mode"] == "time_out" and run_why["task_id"] == "a"


async def test_approval_rejected(saver, options):
    team = ScriptedTeam([{"tasks": [task("a")]}])
    team.fail["a"] = always(ValueError("no way"))
    cfg = config(options(review={"failures": True}))
    state = await run(saver, team, cfg)
    state = await run(saver, team, cfg, Command(resume={state.interrupts[0].id: {"action": "abort"}}))
    run_why, _ = why(state.values)
    assert run_why is not None and run_why["mode"] == "approval_rejected"
    assert run_why["evidence"].startswith("aborted by a human at task a")


async def test_sandbox_refusal(saver, options, tmp_path, monkeypatch):
    # The real coder flow and sandbox on a host where no isolation mode is available: the
    # sandbox refuses to run the tests (nothing runs unisolated unless allowed).
    import tools.sandbox
    from core.models import TestChatModel
    from tests.test_flows_coder import GOAL, MODULE, TESTS_RIGHT

    monkeypatch.setattr(tools.sandbox, "candidate_modes", lambda limits: [])
    agents = tmp_path / "agents.toml"
    agents.write_text('[agents.coder]\nflow = "steps"\n')
    team = ScriptedTeam([{"tasks": [{**task("a", agent="coder"), "instruction": f"{GOAL} [[a]]"}]}])
    coder = TestChatModel(script=[MODULE, TESTS_RIGHT] * 6)
    cfg = config(options(agents_file=str(agents), cache_results=False))
    graph = build_graph(checkpointer=saver)
    with use_model({"coder": coder, "*": team.model}):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
    values = (await graph.aget_state(cfg)).values
    run_why, tasks = why(values)
    assert tasks["a"]["mode"] == "sandbox_refusal" and "sandbox unavailable" in tasks["a"]["evidence"]
    assert tasks["a"]["source"].startswith("results.a.")
    assert run_why is not None and run_why["mode"] == "sandbox_refusal"


async def test_tool_error(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.fail["a"] = always(ToolException("the knowledge base index is missing"))
    state = await run(saver, team, config(options()))
    run_why, tasks = why(state.values)
    assert tasks["a"]["mode"] == "tool_error" and "ToolException" in tasks["a"]["evidence"]
    assert tasks["a"]["blocks"] == ["b"] and "b" not in tasks  # b was skipped, not failed
    assert run_why is not None and run_why["mode"] == "tool_error"


async def test_model_error(saver, options):
    team = Answering([{"tasks": [task("a")]}], {"a": "   "})  # an empty final answer
    state = await run(saver, team, config(options()))
    _, tasks = why(state.values)
    assert tasks["a"]["mode"] == "model_error"
    assert "empty" in tasks["a"]["evidence"]


# -- inter-agent misalignment ---------------------------------------------------------------


async def test_dependency_lost(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.fail["b"] = always(ValueError("nothing to review: no earlier result and no tests in the workspace"))
    state = await run(saver, team, config(options()))
    run_why, tasks = why(state.values)
    assert state.values["results"]["a"]["status"] == "done"
    assert tasks["b"]["mode"] == "dependency_lost" and tasks["b"]["category"] == "misalignment"
    assert run_why is not None and run_why["mode"] == "dependency_lost" and state.values["status"] == "stopped"


# -- specification and system design --------------------------------------------------------


async def test_repeated_step(saver, options):
    team = ScriptedTeam([{"tasks": [task("a", agent="writer")]}])
    team.fail["a"] = always(ValueError("bad input to parser"))
    state = await run(saver, team, config(options()))
    _, tasks = why(state.values)
    assert tasks["a"]["mode"] == "repeated_step" and tasks["a"]["mast"].startswith("FM-1.3")
    assert "the same failure 3 times: ValueError: bad input to parser" in tasks["a"]["evidence"]


async def test_wrong_agent(saver, options):
    team = ScriptedTeam([{"tasks": [task("a", agent="writer"), task("b")]}])
    team.fail["a"] = lambda n: ValueError("cannot do that") if n <= 2 else None
    state = await run(saver, team, config(options()))
    assert state.values["status"] == "completed"  # recovered: the run completed
    run_why, tasks = why(state.values)
    assert run_why is None
    assert tasks["a"]["mode"] == "wrong_agent" and tasks["a"]["recovered"]
    assert "reassigned to" in tasks["a"]["evidence"] and "planned for writer" in tasks["a"]["evidence"]


async def test_spec_not_followed(saver, options):
    plan = {"tasks": [{**task("a", agent="writer"),
                       "instruction": "Write a Python function named is_palindrome(s) [[a]]"}]}
    code = "```python\ndef check(s):\n    return s == s[::-1]\n```"
    team = Answering([plan], {"a": code})
    state = await run(saver, team, config(options()))
    _, tasks = why(state.values)
    assert tasks["a"]["mode"] == "spec_not_followed"
    assert tasks["a"]["evidence"].startswith("asked for is_palindrome")
    assert asked_names("Write a class called Stack and a function named push_all.") == ["Stack", "push_all"]


async def test_plan_invalid(saver, options):
    bad = {"tasks": [task("a", agent="no-such-agent")]}  # the planner never names a real agent
    team = ScriptedTeam([bad])
    team.fail["?"] = always(ValueError("nothing useful"))  # the fallback task (the goal, unmarked)
    state = await run(saver, team, config(options()))
    assert state.values["plan_versions"][-1]["planned_by"] == "fallback"
    run_why, _ = why(state.values)
    assert run_why is not None and run_why["mode"] == "plan_invalid"
    assert run_why["source"].startswith("plan_versions[")


# -- task verification and termination ------------------------------------------------------


async def test_premature_finish(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"])]}])
    team.assessment = {"decision": "finish", "reason": "a answers it"}
    state = await run(saver, team, config(options(adaptive_replanning=True)))
    assert state.values["status"] == "stopped"
    run_why, tasks = why(state.values)
    assert run_why is not None and run_why["mode"] == "premature_finish" and run_why["blocks"] == ["b"]
    assert "a answers it" in run_why["evidence"] and tasks == {}


async def test_verification_failed(saver, options):
    team = ScriptedTeam([{"tasks": [task("a", criteria="must cite the policy")]}])
    team.verdicts = lambda prompt: {"passed": False, "feedback": "no citation of the policy"}
    state = await run(saver, team, config(options(verify_results=True)))
    _, tasks = why(state.values)
    assert tasks["a"]["mode"] == "verification_failed", tasks["a"]
    assert "no citation of the policy" in tasks["a"]["evidence"]


async def test_own_tests_wrong(saver, options, tmp_path):
    # The real coder flow and sandbox: one of the model's own tests expects the wrong value,
    # two independent implementations contradict it, so the coder sets it aside (xfail).
    from core.models import TestChatModel
    from tests.test_flows_coder import GOAL, MODULE, OTHER_MODULE, TESTS_ONE_WRONG

    agents = tmp_path / "agents.toml"
    agents.write_text('[agents.coder]\nflow = "steps"\n')  # the test model otherwise takes the tool loop
    team = ScriptedTeam([{"tasks": [{**task("a", agent="coder"), "instruction": f"{GOAL} [[a]]"}]}])
    coder = TestChatModel(script=[MODULE, TESTS_ONE_WRONG, OTHER_MODULE])
    cfg = config(options(agents_file=str(agents)))
    graph = build_graph(checkpointer=saver)
    with use_model({"coder": coder, "*": team.model}):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
    values = (await graph.aget_state(cfg)).values
    assert values["status"] == "completed"  # the code is right; only a test was wrong
    run_why, tasks = why(values)
    assert run_why is None
    assert tasks["a"]["mode"] == "own_tests_wrong" and tasks["a"]["recovered"]
    assert "1 disputed check(s) set aside" in tasks["a"]["evidence"]
    assert tasks["a"]["source"] == "results.a.history[0]"
    # A test file that does not even collect is the tests' fault too.
    assert classify("the tests of chunk.py FAILED in the sandbox (1 error): ERROR collecting test_chunk.py") \
        == "own_tests_wrong"


# -- the taxonomy and the stats -------------------------------------------------------------


def test_every_mode_has_a_category_a_title_and_a_suggestion():
    assert {m.category for m in TAXONOMY.values()} == {"specification", "misalignment", "verification", "product"}
    assert all(m.title and m.suggestion for m in TAXONOMY.values())
    assert classify("the model said hello") is None
    assert classify("budget: task_tokens (100) reached") == "budget"
    assert classify("budget: task_wall_s (2) exceeded") == "time_out"


async def test_stats_count_modes_over_runs_and_show_the_trend_by_day(saver, options):
    runs = []
    for fail in (None, ValueError("bad input"), ValueError("bad input")):
        team = ScriptedTeam([{"tasks": [task("a"), task("b")]}])
        if fail is not None:
            team.fail["b"] = always(fail)
        state = await run(saver, team, config(options(cache_results=False)))  # b runs every time
        rows = task_rows(state.values)
        runs.append((summarize_run(state.values, "t", rows=rows), rows))
    stats = aggregate(runs)
    assert stats["failure_modes"] == {"runs": {"repeated_step": 2}, "tasks": {"repeated_step": 2}}
    [day] = stats["trend"]
    assert day["runs"] == 3 and day["completed"] == 1 and day["stopped"] == 2
    assert day["completion_rate"] == round(4 / 6, 6) and day["error_rate"] == round(2 / 6, 6)
    assert day["cost_per_workflow_usd"] == stats["per_workflow"]["cost_usd"]["mean"]


# -- the dashboard's "why" panel --------------------------------------------------------------


async def test_the_dashboard_diagnoses_the_values_the_page_posts(saver, options):
    from starlette.testclient import TestClient

    from orchestrator.dashboard import DIAGNOSIS_PATH, app

    team = ScriptedTeam([{"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}], tokens=(100, 50))
    state = await run(saver, team, config(options(budgets={"run_tokens": 300})))
    client = TestClient(app, base_url="http://127.0.0.1:2024")
    values = {k: v for k, v in state.values.items() if k != "messages"}  # as JSON, like the API's
    answer = client.post(DIAGNOSIS_PATH, json=values).json()
    assert answer["status"] == "stopped" and answer["stop_reason"].startswith("budget: run_tokens")
    assert answer["diagnosis"]["run"]["mode"] == "budget"
    refused = client.post(DIAGNOSIS_PATH, content=b"[1]", headers={"content-type": "application/json"})
    assert refused.status_code == 400 and "JSON object" in refused.json()["detail"]


def test_the_dashboard_route_answers_on_a_real_server(readme_server):
    """Behind the server's guard and auth, as the page calls it (token header, JSON body)."""
    import httpx

    values = {"status": "stopped", "stop_reason": "limit: max_rounds (2) reached", "tasks": [{"id": "a"}, {"id": "b"}],
              "results": {"a": {"task": {"id": "a", "agent": "writer"}, "status": "done"}}}
    answer = httpx.post(f"{readme_server.url}/dashboard/diagnosis", json=values,
                        headers=readme_server.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["diagnosis"]["run"]["mode"] == "budget"
    assert answer.json()["diagnosis"]["run"]["blocks"] == ["b"]
