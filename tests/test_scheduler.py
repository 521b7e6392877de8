"""The scheduler: each task starts the moment its own dependencies are done (graph/execution.py).

End to end on the scripted test model, on SQLite and PostgreSQL: eager starts beside a slow
task, the concurrency bound, rounds, several tool approvals pending at once and resumed by
id, a crash (kill -9) mid-fan-out, forks and replays, and revisions from intermediate
results. Timing assertions compare the tasks' own start and end times, never wall time.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langgraph.types import Command
from pydantic import Field

from core.models import TestChatModel
from core.models.factory import use_model
from graph.history import fork_checkpoint
from graph.scheduler import Scheduler
from graph.state import Task
from graph.supervisor import build_graph
from tests.scripting import MARK, ScriptedTeam, context_of, task


class Delayed(TestChatModel):
    """The team's model, with an extra delay for some task markers."""

    delays: dict[str, float] = Field(default_factory=dict)

    async def _wait(self, messages: list[BaseMessage]) -> None:
        human = [m for m in messages if m.type == "human"]
        found = MARK.search(str(human[0].content)) if human else None
        await asyncio.sleep(self.delays.get(found.group(1) if found else "", 0.0))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        result = await super()._agenerate(messages, stop, run_manager, **kwargs)  # counts the call
        await self._wait(messages)
        return result

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await self._wait(messages)
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


def delayed(team: ScriptedTeam, **delays: float) -> ScriptedTeam:
    team.model = Delayed(responses=team.model.responses, text=team.model.text,
                         latency_s=team.model.latency_s, delays=delays)
    return team


def config(thread: str, opts: dict[str, Any]) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"{thread}-{uuid.uuid4().hex[:8]}", "settings": opts},
            "recursion_limit": 200}


async def run(saver: Any, team: ScriptedTeam, payload: Any, cfg: dict[str, Any]) -> Any:
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke(payload, cfg, durability="sync",
                            context=context_of(cfg) if isinstance(payload, dict) else None)
    return await graph.aget_state(cfg)


def spans(state: Any) -> dict[str, tuple[float, float]]:
    return {k: (r["metrics"]["started_at"], r["metrics"]["ended_at"])
            for k, r in state.values["results"].items() if r.get("metrics")}


# -- the schedule itself (no graph) -------------------------------------------------------


async def test_rounds_count_what_each_task_waited_for() -> None:
    tasks = [Task(id=i, agent="writer", instruction=i, depends_on=deps)
             for i, deps in [("a", []), ("b", []), ("c", []), ("d", ["a"])]]
    s = Scheduler(tasks, {}, max_concurrency=2, base_round=3)
    gates = {t.id: asyncio.ensure_future(s.admit(t.id)) for t in tasks}
    await asyncio.sleep(0)
    assert s.open(lambda t, r: {"go": t.id}) == ["a", "b"]  # the bound: two at once
    s.leave("a")
    s.finished("a", "done")
    assert s.open(lambda t, r: {}) == ["c"]  # plan order; d is next once a permit is free
    s.leave("b")
    s.finished("b", "done")
    assert s.open(lambda t, r: {}) == ["d"]
    assert {k: s.rounds[k] for k in "abcd"} == {"a": 4, "b": 4, "c": 5, "d": 5}
    assert [g.round for g in await asyncio.gather(*gates.values())] == [4, 4, 5, 5]


# -- eager starts ---------------------------------------------------------------------------


async def test_a_dependent_starts_while_a_slow_sibling_still_runs(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"]), task("slow")]}
    team = delayed(ScriptedTeam([plan]), slow=2.5, a=0.1, b=0.1, c=0.1)
    state = await run(saver, team, {"goal": "skewed"}, config("eager", options()))
    s = spans(state)
    assert state.values["status"] == "completed"
    # The chain ran beside the slow task, each link right after the one before it.
    assert s["a"][1] <= s["b"][0] and s["b"][1] <= s["c"][0]
    assert s["c"][1] < s["slow"][1]
    assert s["b"][0] - s["a"][1] < 0.5
    assert state.values["rounds"] == 3  # as the round-based design numbered them
    assert sum(team.calls.values()) == 4  # every task ran once


async def test_the_concurrency_bound_holds_with_eager_starts(saver, options):
    plan = {"tasks": [task("slow"), task("a"), task("b"), task("c", deps=["a"]), task("d")]}
    team = delayed(ScriptedTeam([plan]), slow=1.5, a=0.1, b=0.1, c=0.1, d=0.1)
    state = await run(saver, team, {"goal": "g"}, config("bound", options(limits={"max_concurrency": 2})))
    s = spans(state)
    peak = max(sum(1 for a, e in s.values() if a <= t < e) for t, _ in s.values())
    assert peak <= 2
    # slow holds one permit; the other four pass through the second one meanwhile.
    assert max(e for k, (_, e) in s.items() if k != "slow") < s["slow"][1]


async def test_a_failed_task_blocks_only_its_dependents(saver, options):
    plan = {"tasks": [task("bad"), task("after", deps=["bad"]), task("other"), task("next", deps=["other"])]}
    team = ScriptedTeam([plan])
    team.fail["bad"] = lambda n: ValueError("broken")
    state = await run(saver, team, {"goal": "g"}, config("fail", options()))
    results = state.values["results"]
    assert results["other"]["status"] == results["next"]["status"] == "done"
    assert results["bad"]["status"] == "failed" and results["after"]["status"] == "skipped"
    assert team.calls["after"] == 0


async def test_a_failed_tasks_partial_work_reaches_its_dependents_marked_partial(saver, options):
    # "bad" keeps failing its check but leaves an output: its dependent runs on it, told it
    # is partial, and the answer shows the partial work. "empty" fails with nothing: its
    # dependent does not run on nothing.
    plan = {"tasks": [task("bad", criteria="must be right"), task("after", deps=["bad"]),
                      task("empty"), task("never", deps=["empty"])]}
    team = ScriptedTeam([plan])
    team.verdicts = lambda prompt: {"passed": "result-bad" not in prompt, "feedback": "not right"}
    team.fail["empty"] = lambda n: ValueError("broken")
    state = await run(saver, team, {"goal": "g"}, config("partial-work", options(verify_results=True)))
    results = state.values["results"]
    assert results["bad"]["status"] == "failed" and results["bad"]["output"], results["bad"]
    assert results["after"]["status"] == "done" and team.calls["after"] >= 1
    seen = [p for p in team.prompts if "[[after]]" in p]
    assert seen and "## Partial result of task bad" in seen[0] and "This task failed" in seen[0]
    assert results["never"]["status"] == "skipped" and team.calls["never"] == 0
    assert "left nothing usable" in results["never"]["error"]
    answer = state.values["answer"]
    # (escalation may have reassigned the failed tasks: the agent in the heading varies)
    assert re.search(r"\*\*bad \(\w+\)\*\*: partial result — the task failed: failed verification", answer)
    assert "used as such by after" in answer
    assert re.search(r"\*\*empty \(\w+\)\*\*: no result", answer)


# -- what a task checkpoints -----------------------------------------------------------------


async def test_only_agents_that_act_checkpoint_their_sub_graph_steps(saver, options):
    """A writer's sub-graph saves nothing when it completes (its result, saved by the step, is
    the unit of durability); support, which can refund and update tickets, saves its steps."""
    team = ScriptedTeam([{"tasks": [task("w"), task("s", agent="support")]}])
    cfg = config("durability", options(cache_results=False))
    state = await run(saver, team, {"goal": "g"}, cfg)
    assert state.values["status"] == "completed"
    thread = {"configurable": {"thread_id": cfg["configurable"]["thread_id"]}}
    namespaces = [c.config["configurable"]["checkpoint_ns"] async for c in saver.alist(thread)]
    nested = {ns for ns in namespaces if ns}
    assert nested and all("|run_task:" in ns for ns in nested)
    agents = set()
    for ns in nested:
        saved = await saver.aget_tuple({"configurable": {**thread["configurable"], "checkpoint_ns": ns}})
        agents.add(saved.checkpoint["channel_values"].get("task", {}).get("agent"))
    assert agents == {"support"}


# -- approvals -------------------------------------------------------------------------------


def ticket_steps(team: ScriptedTeam, tickets: dict[str, str]) -> None:
    """Support tasks each update one ticket (a high-risk action), then answer."""
    steps = {marker: {"thought": "update", "action": "update_ticket", "answer": "", "citations": [],
                      "action_input": {"ticket_id": tid, "status": "pending", "note": f"note from {marker}"}}
             for marker, tid in tickets.items()}
    answer = team.model.responses["AgentStep"]

    def next_step(messages: Any) -> Any:
        marker = team._marker(messages)
        if marker in steps and not any("update_ticket" in str(m.content) for m in messages[2:]):
            with team.lock:
                team.calls[marker] += 1
            return steps[marker]
        return answer(messages)

    team.model.responses["AgentStep"] = next_step


def ticket_task(marker: str, ticket: str) -> dict[str, Any]:
    """A support task whose instruction names its ticket: the customer its action is for."""
    return {**task(marker, agent="support"), "instruction": f"Do part {marker} [[{marker}]] on ticket {ticket}"}


def notes(data_dir: str, ticket: str) -> int:
    with sqlite3.connect(Path(data_dir) / "customer_service.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ticket_notes WHERE ticket_id=? AND body LIKE 'note from %'",
                                (ticket,)).fetchone()[0])


async def test_several_approvals_pend_at_once_and_resume_by_id(saver, options):
    tickets = {"s1": "T501", "s2": "T502", "s3": "T503"}
    plan = {"tasks": [*(ticket_task(m, t) for m, t in tickets.items()), task("w"), task("w2", deps=["w"]),
                      task("after", deps=["s1"])]}
    team = ScriptedTeam([plan])
    ticket_steps(team, tickets)
    opts = options(review={"high_risk_tools": True}, cache_results=False)
    cfg = config("approvals", opts)
    paused = await run(saver, team, {"goal": "tickets"}, cfg)
    kinds = [i.value["type"] for i in paused.interrupts]
    assert kinds == ["tool_approval"] * 3, kinds  # all three wait at the same time
    assert len({i.id for i in paused.interrupts}) == 3
    assert team.calls["w"] == team.calls["w2"] == 1  # independent work went on meanwhile
    assert team.calls["after"] == 0
    by_ticket = {i.value["args"]["ticket_id"]: i for i in paused.interrupts}
    answers = {by_ticket["T501"].id: {"approved": True}, by_ticket["T502"].id: {"approved": True},
               by_ticket["T503"].id: {"approved": False, "feedback": "not now"}}
    state = await run(saver, team, Command(resume=answers), cfg)
    assert not state.interrupts and state.values["status"] == "completed"
    assert [notes(opts["data_dir"], t) for t in ("T501", "T502", "T503")] == [1, 1, 0]
    assert team.calls["w"] == team.calls["w2"] == 1  # finished tasks were not run again
    assert state.values["results"]["after"]["status"] == "done"


async def test_answering_some_approvals_lets_the_rest_wait(saver, options):
    tickets = {"s1": "T501", "s2": "T502"}
    team = ScriptedTeam([{"tasks": [ticket_task(m, t) for m, t in tickets.items()]}])
    ticket_steps(team, tickets)
    opts = options(review={"high_risk_tools": True}, cache_results=False)
    cfg = config("partial", opts)
    paused = await run(saver, team, {"goal": "tickets"}, cfg)
    first = next(i for i in paused.interrupts if i.value["args"]["ticket_id"] == "T501")
    state = await run(saver, team, Command(resume={first.id: {"approved": True}}), cfg)
    assert [i.value["args"]["ticket_id"] for i in state.interrupts] == ["T502"]
    assert notes(opts["data_dir"], "T501") == 1 and notes(opts["data_dir"], "T502") == 0
    state = await run(saver, team, Command(resume={state.interrupts[0].id: {"approved": True}}), cfg)
    assert state.values["status"] == "completed"
    assert notes(opts["data_dir"], "T501") == 1 and notes(opts["data_dir"], "T502") == 1  # once each


# -- crash -----------------------------------------------------------------------------------

CRASH = textwrap.dedent(
    '''
    import asyncio, json, os, sys, threading
    from graph.persistence import open_checkpointer
    from graph.supervisor import build_graph
    from core.models.factory import use_model
    from core.settings import load_settings
    from tests.scripting import ScriptedTeam, task
    from tests.test_scheduler import delayed

    opts, log, phase = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    plan = {"tasks": [task("a"), task("c", deps=["a"]), task("b"), task("d", deps=["b"])]}
    team = delayed(ScriptedTeam([plan]), b=3.0 if phase == "crash" else 0.0)

    def logged(marker):
        def note(n):
            with open(log, "a") as f:
                f.write(marker + "\\n")
            if marker == "c" and phase == "crash":
                # a and c are done and saved well before this; b is still in flight.
                threading.Timer(1.0, os._exit, (17,)).start()
        return note

    for marker in "abcd":
        team.fail[marker] = logged(marker)
    cfg = {"configurable": {"thread_id": opts["thread"]}}
    context = {k: v for k, v in opts.items() if k != "thread"}

    async def main():
        async with open_checkpointer(load_settings(**context)) as saver:
            graph = build_graph(checkpointer=saver)
            with use_model(team.model):
                payload = {"goal": "four parts"} if phase == "crash" else None
                await graph.ainvoke(payload, cfg, durability="sync", context=context)
            state = await graph.aget_state(cfg)
            print(json.dumps({"status": state.values.get("status"),
                              "done": sorted(k for k, r in state.values["results"].items() if r["status"] == "done")}))
    asyncio.run(main())
    '''
)


def run_phase(tmp_path: Path, opts: dict[str, Any], phase: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "worker.py"
    script.write_text(CRASH)
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, str(script), json.dumps(opts), str(tmp_path / "calls.log"), phase],
        capture_output=True, text=True, timeout=120, cwd=root,
        env={"PYTHONPATH": str(root), "LANGSMITH_TRACING": "false", "PATH": "/usr/bin:/bin"},
    )


def test_kill_mid_fan_out_reruns_only_the_task_in_flight(tmp_path: Path, backend: dict[str, Any], options):
    opts = {**options(cache_results=False, **backend), "thread": f"crash-{uuid.uuid4().hex[:8]}"}
    crashed = run_phase(tmp_path, opts, "crash")
    assert crashed.returncode == 17, crashed.stderr[-2000:]
    before = (tmp_path / "calls.log").read_text().split()
    assert sorted(before) == ["a", "b", "c"]  # d waits for b

    resumed = run_phase(tmp_path, opts, "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "completed", "done": ["a", "b", "c", "d"]}
    # a and c finished before the kill (saved as the step's pending writes): not run again.
    assert sorted((tmp_path / "calls.log").read_text().split()[len(before):]) == ["b", "d"]


# -- forks and replays -------------------------------------------------------------------------


async def test_fork_before_the_step_replays_it_and_asks_again(saver, options):
    tickets = {"s1": "T501"}
    team = ScriptedTeam([{"tasks": [ticket_task("s1", "T501"), task("w")]}])
    ticket_steps(team, tickets)
    opts = options(review={"high_risk_tools": True}, cache_results=False)
    cfg = config("forkstep", opts)
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        paused = await graph.aget_state(cfg)
        await graph.ainvoke(Command(resume={paused.interrupts[0].id: {"approved": True}}), cfg, durability="sync")
        done = await graph.aget_state(cfg)
        history = [s async for s in graph.aget_state_history(cfg)]
        before = next(s for s in history if s.next == ("dispatch",))
        fork_cfg = await fork_checkpoint(saver, before.config)
        await graph.ainvoke(None, fork_cfg, durability="sync")
        forked = await graph.aget_state(cfg)
    assert done.values["status"] == "completed"
    # The branch runs the step again (w runs again), but the ticket update's approval is
    # recorded with the action it approved: the fork reuses it instead of asking again
    # (docs/side-effects.md), and the action's outcome is replayed, not repeated.
    assert forked.interrupts == () and forked.values["status"] == "completed"
    assert team.calls["w"] == 2
    original = await graph.aget_state(done.config)
    assert original.values["answer"] == done.values["answer"]


async def test_each_idle_moment_of_a_chain_is_a_checkpoint(saver, options):
    plan = {"tasks": [task("a"), task("b", deps=["a"]), task("c", deps=["b"])]}
    team = ScriptedTeam([plan])
    cfg = config("idle", options())
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        history = [s async for s in graph.aget_state_history(cfg)]
    between = [sorted(k for k, r in s.values.get("results", {}).items() if r["status"] == "done")
               for s in reversed(history) if s.next == ("dispatch",)]
    assert between == [[], ["a"], ["a", "b"]]


# -- revisions from intermediate results ---------------------------------------------------------


async def test_a_revision_mid_step_replaces_only_tasks_not_started(saver, options):
    plan = {"tasks": [task("slow"), task("a"), task("b", deps=["a"])]}
    team = delayed(ScriptedTeam([plan]), slow=0.8)
    team.assessment = {"decision": "revise", "reason": "b is not needed, c is", "tasks": [task("c", deps=["a"])]}
    cfg = config("revise", options(adaptive_replanning=True, limits={"max_plan_revisions": 1}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    assert [t["id"] for t in state.values["tasks"]] == ["slow", "a", "c"]
    assert team.calls["b"] == 0 and team.calls["c"] == 1 and team.calls["slow"] == 1
    assert state.values["plan_versions"][-1]["reason"].startswith("revised: b is not needed")


async def test_a_dependent_waits_only_for_the_assessment_of_its_dependency(saver, options):
    plan = {"tasks": [task("slow"), task("a"), task("b", deps=["a"])]}
    team = delayed(ScriptedTeam([plan]), slow=1.0)
    cfg = config("held", options(adaptive_replanning=True, limits={"max_plan_revisions": 2}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    s = spans(state)
    assert s["a"][1] <= s["b"][0] < s["slow"][1]  # b started after the verdict, beside slow
    assert state.values["status"] == "completed"


# -- the run's fixed steps ---------------------------------------------------------------------


async def test_without_answer_review_the_run_ends_in_the_synthesis_step(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b")]}])
    cfg = config("end", options())
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "g"}, cfg, durability="sync", context=context_of(cfg))
        history = [s async for s in graph.aget_state_history(cfg)]
    assert history[0].next == () and history[0].values["status"] == "completed"
    assert history[1].next == ("synthesize",)  # no review_answer step between them
    assert all(s.next != ("review_answer",) for s in history)


async def test_answer_review_still_pauses_and_edits_or_rewrites_the_answer(saver, options):
    team = ScriptedTeam([{"tasks": [task("a"), task("b")]}])
    cfg = config("review", options(review={"final_answer": True}))
    state = await run(saver, team, {"goal": "g"}, cfg)
    (pending,) = state.interrupts
    assert pending.value["type"] == "answer_review" and state.next == ("review_answer",)
    rejected = await run(saver, team, Command(resume={pending.id: {"action": "reject", "feedback": "shorter"}}), cfg)
    (again,) = rejected.interrupts  # written again, and asked again
    assert again.value["type"] == "answer_review"
    done = await run(saver, team, Command(resume={again.id: {"action": "edit", "answer": "mine"}}), cfg)
    assert done.next == () and done.values["answer"] == "mine"
    assert done.values["messages"][-1].content == "mine"


def test_tool_forms_are_cached_per_definition_and_equal_to_a_fresh_conversion(tmp_path: Path) -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from agents import prompts
    from tools.base import make_tool
    from tools.context import ToolContext
    from tools.registry import TOOL_NAMES, build_tools
    from tools.workspace import ReadFileArgs

    def tools_for(run: str) -> list[Any]:  # tools are built per task: new instances each time
        base = tmp_path / run
        return build_tools(TOOL_NAMES, ToolContext(workspace=base / "ws", kb_dir=base / "kb",
                                                   kb_index=base / "i", customer_db=base / "c"))

    first, second = tools_for("a"), tools_for("b")
    for one, other in zip(first, second, strict=True):
        assert one is not other and prompts.tool_form(one) == convert_to_openai_tool(one)
        assert prompts.tool_form(other) == convert_to_openai_tool(other)
        assert prompts._signature(one) == prompts._signature(other) == prompts._build_signature(one)
    form = prompts.tool_form(first[0])
    form["function"]["name"] = "changed"  # each caller gets its own copy
    assert prompts.tool_form(first[0])["function"]["name"] == first[0].name

    async def noop(path: str, start_line: int = 1) -> str:
        return ""

    # Same class and schema, another description: another entry, not the cached one.
    a = make_tool(name="read_file", description="Read a file.", args_schema=ReadFileArgs, coroutine=noop)
    b = make_tool(name="read_file", description="Open a document.", args_schema=ReadFileArgs, coroutine=noop)
    assert prompts._signature(a).endswith("Read a file") and prompts._signature(b).endswith("Open a document")


async def test_a_forced_tool_call_gives_what_the_structured_output_chain_gives() -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from pydantic import BaseModel

    from core.models.structured import _ForcedToolCall, _structured_runnable

    class Verdict(BaseModel):
        verdict: str
        score: int

    replies = [
        AIMessage("", tool_calls=[{"name": "Verdict", "args": {"verdict": "pass", "score": 3}, "id": "1"}]),
        AIMessage("", tool_calls=[{"name": "Verdict", "args": {"verdict": "pass", "score": "x"}, "id": "2"}]),
        AIMessage("", invalid_tool_calls=[{"name": "Verdict", "args": '{"verdict": ', "id": "3", "error": "bad"}]),
        AIMessage("no tool call at all"),
    ]
    direct = _structured_runnable(TestChatModel(script=list(replies)), Verdict, "function_calling")[1]
    assert isinstance(direct, _ForcedToolCall)
    chain = TestChatModel(script=list(replies)).with_structured_output(
        Verdict, method="function_calling", include_raw=True)
    for _ in replies:
        got, want = await direct.ainvoke([HumanMessage("judge")]), await chain.ainvoke([HumanMessage("judge")])
        assert got["raw"].tool_calls == want["raw"].tool_calls and got["parsed"] == want["parsed"]
        assert type(got["parsing_error"]) is type(want["parsing_error"])
