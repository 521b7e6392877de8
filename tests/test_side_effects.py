"""Side effects exactly once, approvals that cannot be skipped: the fault-injection matrix.

One support task looks up order O1001, refunds $20 (high risk), adds a note to ticket T501
(high risk) and answers. A fault is injected per cell; in every cell the refund row exists
once, the ticket note once, and each action's approval was asked once. The scripted model
decides from what it has observed, like a real one: a fresh attempt does the work again.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from core.models.factory import use_model
from core.settings import load_settings
from core.usage import attempt_key, take_carried, track_usage
from graph import result_cache
from graph.history import fork_checkpoint, fork_overrides
from graph.supervisor import build_graph
from tests.conftest import PG_URI, postgres_available
from tests.pg_state import throwaway_database
from tests.scripting import ScriptedTeam, context_of, task, text_of
from tools.actions import REPLAY_NOTE, idempotency_key
from tools.context import ToolContext

GOAL = "Help customer C001 with order O1001."
"""The request: it establishes the customer every action is for."""
NOTE = "Refunded $20.00 for the crackling headphones."
ACTIONS = [
    ("lookup_order", {"order_id": "O1001"}),
    ("issue_refund", {"order_id": "O1001", "amount": 20.0, "reason": "arrived damaged"}),
    ("update_ticket", {"ticket_id": "T501", "status": "resolved", "note": NOTE}),
]
ROOT = Path(__file__).resolve().parent.parent


def support_team(plan: dict[str, Any] | None = None,
                 fail_after: dict[str, BaseException | list[BaseException]] | None = None) -> ScriptedTeam:
    """A team whose support worker acts from its observations; each error in
    ``fail_after[tool]`` is raised once, by a step that has seen that tool's result."""
    team = ScriptedTeam([plan or {"tasks": [task("help", agent="support")]}])
    queued = {t: list(e) if isinstance(e, list) else [e] for t, e in (fail_after or {}).items()}

    def next_step(messages: Any) -> dict[str, Any]:
        marker = team._marker(messages)
        text = text_of(messages)
        with team.lock:
            team.calls[marker] += 1
            team.prompts.append(text)
            seen = set(re.findall(r"Result of (\w+):", text))
            due = next((t for t, errors in queued.items() if t in seen and errors), None)
            error = queued[due].pop(0) if due else None
        if error is not None:
            raise error
        for name, args in ACTIONS:
            if name not in seen:
                return {"thought": f"use {name}", "action": name, "action_input": args,
                        "answer": "", "citations": []}
        observed = "\n".join(str(m.content) for m in messages[2:])[-2500:]
        return {"thought": "done", "action": "final_answer", "action_input": {},
                "answer": f"result-{marker}: {observed}", "citations": ["O1001"]}

    team.model.responses["AgentStep"] = next_step
    return team


def cfg(opts: dict[str, Any], thread: str | None = None) -> dict[str, Any]:
    thread_id = thread or f"fx-{uuid.uuid4().hex[:10]}"
    return {"configurable": {"thread_id": thread_id, "settings": opts}, "recursion_limit": 300}


async def drive(graph: Any, c: dict[str, Any], payload: Any, asked: Counter[str],
                approve: bool = True) -> Any:
    """Run until the thread finishes, answering every tool approval; count the questions."""
    context = context_of(c) if isinstance(payload, dict) else None
    await graph.ainvoke(payload, c, durability="sync", context=context)
    c = {**c, "configurable": {"thread_id": c["configurable"]["thread_id"]}}  # the newest state
    for _ in range(20):
        state = await graph.aget_state(c)
        if not state.interrupts:
            return state
        resume = {}
        for pause in state.interrupts:
            assert pause.value["type"] == "tool_approval", pause.value
            asked[pause.value["tool"]] += 1
            resume[pause.id] = {"approved": approve, "feedback": "" if approve else "no"}
        await graph.ainvoke(Command(resume=resume), c, durability="sync")
    raise AssertionError("the run kept pausing")


async def before_run_task(graph: Any, c: dict[str, Any]) -> Any:
    """The checkpoint from which the task was dispatched (before it ran): the first one whose
    next step is the dispatch step, which runs the tasks."""
    found = [s async for s in graph.aget_state_history(c) if s.next == ("dispatch",)]
    assert found, "no checkpoint before dispatch"
    return found[-1]


def db_of(opts: dict[str, Any]) -> Path:
    return Path(opts["data_dir"]) / "customer_service.sqlite"


def effects(opts: dict[str, Any]) -> tuple[int, int]:
    """(refund rows on O1001, agent notes on T501 with the note), in whichever store the
    run used: the SQLite file in data_dir, or PostgreSQL (``state_uri``)."""
    refunds_sql = "SELECT COUNT(*) FROM refunds WHERE order_id='O1001'"
    notes_sql = "SELECT COUNT(*) FROM ticket_notes WHERE ticket_id='T501' AND body=?"
    if opts.get("state_uri"):
        import psycopg

        with psycopg.connect(opts["state_uri"], options="-c search_path=customer_service") as pg:
            return (int(pg.execute(refunds_sql).fetchone()[0]),  # type: ignore[index]
                    int(pg.execute(notes_sql.replace("?", "%s"), (NOTE,)).fetchone()[0]))  # type: ignore[index]
    with sqlite3.connect(db_of(opts)) as conn:
        refunds = conn.execute(refunds_sql).fetchone()[0]
        notes = conn.execute(notes_sql, (NOTE,)).fetchone()[0]
    return refunds, notes


def exactly_once(opts: dict[str, Any], asked: Counter[str]) -> None:
    assert effects(opts) == (1, 1)
    assert asked == Counter({"issue_refund": 1, "update_ticket": 1}), asked


@pytest.fixture(params=["sqlite", "postgres", "postgres+state"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The checkpoint backend and, for ``postgres+state``, the customer database and ledger
    in PostgreSQL too (``state_uri``, a throwaway database): the matrix on every store."""
    if request.param == "sqlite":
        yield {}
        return
    if not postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URI}")
    if request.param == "postgres":
        yield {"checkpoint_uri": PG_URI}
        return
    with throwaway_database("fx") as uri:
        yield {"checkpoint_uri": PG_URI, "state_uri": uri}


@pytest.fixture
def review_on(options: Any, backend: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    def build(**extra: Any) -> dict[str, Any]:
        return options(review={"high_risk_tools": True}, **backend, **extra)
    return build


# -- the matrix ---------------------------------------------------------------------------


async def test_baseline_and_rejection(saver, review_on):
    opts = review_on()
    asked: Counter[str] = Counter()
    graph = build_graph(checkpointer=saver)
    with use_model(support_team().model):
        state = await drive(graph, cfg(opts), {"goal": "refund O1001"}, asked, approve=False)
    assert effects(opts) == (0, 0)  # rejected: nothing ran
    assert asked == Counter({"issue_refund": 1, "update_ticket": 1})
    assert state.values["results"]["help"]["status"] == "done"


async def test_transient_error_after_the_action(saver, review_on):
    opts = review_on()
    asked: Counter[str] = Counter()
    team = support_team(fail_after={"update_ticket": ConnectionError("network drop")})
    with use_model(team.model):
        state = await drive(build_graph(checkpointer=saver), cfg(opts), {"goal": GOAL}, asked)
    record = state.values["results"]["help"]
    assert record["status"] == "done" and record["metrics"]["retries"] == 1
    assert team.calls["help"] == 8 and record["metrics"]["model_calls"] == 7  # 3 + 4 counted
    exactly_once(opts, asked)


async def test_task_time_out_during_the_action(saver, review_on, monkeypatch):
    import tools.customer_service as cs

    original, slow = cs._refund, threading.Event()

    def slow_refund(*args: Any, **kwargs: Any) -> str:
        if not slow.is_set():  # the first refund is still running when the budget runs out
            slow.set()
            time.sleep(2.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(cs, "_refund", slow_refund)
    opts = review_on(budgets={"task_wall_s": 1.5})
    asked: Counter[str] = Counter()
    with use_model(support_team().model):
        state = await drive(build_graph(checkpointer=saver), cfg(opts), {"goal": GOAL}, asked)
    record = state.values["results"]["help"]
    timed_out = [h for h in record["history"] if "task_wall_s" in h]
    # The time-out was reported after the refund finished, and says what completed.
    assert timed_out and "actions that completed: Refund #" in timed_out[0], record["history"]
    assert record["status"] == "done"  # the retry reused the recorded refund
    assert REPLAY_NOTE in record["output"]
    exactly_once(opts, asked)


async def test_fork_past_the_action_reuses_its_outcome(saver, review_on):
    opts = review_on()
    asked: Counter[str] = Counter()
    c = cfg(opts)
    graph = build_graph(checkpointer=saver)
    with use_model(support_team().model):
        await drive(graph, c, {"goal": GOAL}, asked)
        before = await before_run_task(graph, c)
        fork = await fork_checkpoint(saver, before.config)
        state = await drive(graph, fork, None, asked)
    record = state.values["results"]["help"]
    assert record["status"] == "done" and REPLAY_NOTE in record["output"]
    exactly_once(opts, asked)  # the fork asked nobody and changed nothing


async def test_fork_with_a_new_action_scope_acts_again_under_the_rules(saver, review_on):
    opts = review_on()
    asked: Counter[str] = Counter()
    c = cfg(opts)
    graph = build_graph(checkpointer=saver)
    with use_model(support_team().model):
        await drive(graph, c, {"goal": GOAL}, asked)
        before = await before_run_task(graph, c)
        fork = await fork_checkpoint(saver, before.config, {"run_settings": {"action_scope": "again"}})
        state = await drive(graph, fork, None, asked)
    output = state.values["results"]["help"]["output"]
    # New keys: the actions are evaluated afresh, and the rules refuse a second refund and
    # a repeated note before anyone is asked.
    assert REPLAY_NOTE not in output and "already has a refund" in output
    exactly_once(opts, asked)


async def test_fork_does_not_inherit_auto_approve(saver, options, backend):
    opts = options(**backend)  # review off for tools: what --auto-approve stores
    c = cfg(opts)
    graph = build_graph(checkpointer=saver)
    with use_model(support_team().model):
        await graph.ainvoke({"goal": GOAL}, c, durability="sync", context=context_of(c))
        assert effects(opts) == (1, 1)  # auto-approved
        before = await before_run_task(graph, c)
        fork = await fork_checkpoint(saver, before.config)
    forked = (await graph.aget_state(fork)).values
    assert "review" not in forked["run_settings"] and forked["run_settings"]["model"] == "test"
    assert fork_overrides({"review": {"plan": False}, "model": "test"}, {}) == {"model": "test"}
    again = {"review": {"high_risk_tools": False}}
    assert fork_overrides({"review": {"plan": False}}, again) == again  # given again: kept


async def test_cache_hit_on_a_support_goal(saver, review_on):
    opts = review_on()
    plan = {"tasks": [task("help", agent="support"), task("faq", agent="writer")]}
    asked: Counter[str] = Counter()
    graph = build_graph(checkpointer=saver)
    with use_model(support_team(plan).model):
        await drive(graph, cfg(opts), {"goal": "refund O1001 and write the FAQ"}, asked)
    with use_model(support_team(plan).model):
        second = await drive(graph, cfg(opts), {"goal": "refund O1001 and write the FAQ"}, asked)
    results = second.values["results"]
    assert results["faq"]["metrics"]["cache_hit"]  # a writer's answer is reused, visibly
    assert any("result cache" in h for h in results["faq"]["history"])
    assert not results["help"]["metrics"]["cache_hit"]  # the support task ran again
    # ... and its repeated refund was refused by the rules without asking anyone.
    assert "not put to a reviewer" in results["help"]["output"]
    exactly_once(opts, asked)


async def test_two_threads_with_the_same_goal(saver, review_on):
    opts = review_on()
    graph = build_graph(checkpointer=saver)
    one, two = Counter[str](), Counter[str]()
    with use_model(support_team().model):
        await drive(graph, cfg(opts), {"goal": "refund O1001"}, one)
        await drive(graph, cfg(opts), {"goal": "refund O1001"}, two)
    exactly_once(opts, one + two)


async def test_two_concurrent_threads_with_the_same_goal(saver, review_on):
    opts = review_on()
    graph = build_graph(checkpointer=saver)
    one, two = Counter[str](), Counter[str]()
    with use_model(support_team().model):
        await asyncio.gather(drive(graph, cfg(opts), {"goal": "refund O1001"}, one),
                             drive(graph, cfg(opts), {"goal": "refund O1001"}, two))
    # Two threads are two requests: each may ask its reviewer (once per action), but the
    # refund and the note land once: the rules decide inside the database's transaction.
    assert effects(opts) == (1, 1)
    # Either thread may reach the refund first (they run concurrently): one of them asked.
    assert max((one | two).values()) == 1 and one["issue_refund"] + two["issue_refund"] >= 1


async def test_reassignment_after_a_crash(saver, review_on):
    opts = review_on()
    asked: Counter[str] = Counter()
    team = support_team(fail_after={"update_ticket": ValueError("the model's reply broke the client")})
    with use_model(team.model):
        state = await drive(build_graph(checkpointer=saver), cfg(opts), {"goal": GOAL}, asked)
    record = state.values["results"]["help"]
    assert record["status"] == "done" and any(h.startswith("crashed: ValueError") for h in record["history"])
    assert record["attempts"] == 2 and REPLAY_NOTE in record["output"]
    # The crashed attempt's three model calls stay counted beside the second attempt's four.
    assert record["metrics"]["model_calls"] == 7, record["metrics"]
    exactly_once(opts, asked)


BILLING = """
[agents.billing]
description = "Helps customers with billing: looks up orders and tickets, issues refunds, updates tickets."
tools = ["lookup_customer", "lookup_order", "lookup_ticket", "search_knowledge_base", "issue_refund", "update_ticket"]
prompt = "You are the billing agent. Look up the order before you act."
"""


async def test_reassignment_to_another_agent_after_crashes(saver, review_on, tmp_path):
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text(BILLING)
    opts = review_on(agents_file=str(agents_file))
    asked: Counter[str] = Counter()
    crash = ValueError("the model's reply broke the client")
    team = support_team(fail_after={"update_ticket": [crash, crash]})
    with use_model(team.model):
        state = await drive(build_graph(checkpointer=saver), cfg(opts), {"goal": GOAL}, asked)
    record = state.values["results"]["help"]
    assert "escalation: reassigned to billing" in record["history"], record["history"]
    assert record["status"] == "done" and record["task"]["agent"] == "billing"
    assert REPLAY_NOTE in record["output"]  # billing got support's recorded outcomes
    exactly_once(opts, asked)


# -- a process killed after the commit, before the checkpoint -----------------------------

KILL_SCRIPT = textwrap.dedent(
    '''
    import asyncio, json, os, sys
    from collections import Counter
    from graph.persistence import open_checkpointer
    from graph.supervisor import build_graph
    from core.models.factory import use_model
    from core.settings import load_settings
    import tools.customer_service as cs
    from tests.test_side_effects import GOAL, drive, support_team

    opts, thread, phase, kill_after, asked_log = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    if phase == "crash":
        name = {"issue_refund": "_refund", "update_ticket": "_update_ticket"}[kill_after]
        original = getattr(cs, name)
        def commit_then_die(*args, **kwargs):
            original(*args, **kwargs)  # committed: the effect and its ledger row
            os._exit(17)               # before the tools node's result is checkpointed
        setattr(cs, name, commit_then_die)
    c = {"configurable": {"thread_id": thread, "settings": opts}, "recursion_limit": 300}

    class Logged(Counter):
        def __setitem__(self, tool, n):  # one line per question, as it is asked
            with open(asked_log, "a") as f:
                f.write(tool + "\\n")
            super().__setitem__(tool, n)

    async def main():
        async with open_checkpointer(load_settings(**opts)) as saver:
            with use_model(support_team().model):
                state = await drive(build_graph(checkpointer=saver), c,
                                    {"goal": GOAL} if phase == "crash" else None, Logged())
        print(json.dumps({"status": state.values["status"],
                          "output": state.values["results"]["help"]["output"]}))
    asyncio.run(main())
    '''
)


@pytest.mark.parametrize("kill_after", ["issue_refund", "update_ticket"])
def test_process_killed_after_commit_before_checkpoint(tmp_path, review_on, kill_after):
    opts = review_on()
    script, log, thread = tmp_path / "kill.py", tmp_path / "asked.log", f"kill-{uuid.uuid4().hex[:8]}"
    script.write_text(KILL_SCRIPT)

    def phase(name: str) -> subprocess.CompletedProcess[str]:
        env = {"PYTHONPATH": str(ROOT), "LANGSMITH_TRACING": "false", "PATH": "/usr/bin:/bin",
               "ORCHESTRATOR_DATA_DIR": opts["data_dir"]}
        return subprocess.run([sys.executable, str(script), json.dumps(opts), thread, name, kill_after, str(log)],
                              capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)

    crashed = phase("crash")
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    assert effects(opts)[0] == 1  # the refund committed before the process died
    resumed = phase("resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "completed" and REPLAY_NOTE in outcome["output"]
    asked = Counter(log.read_text().split())  # both processes' questions
    exactly_once(opts, asked)


# -- the pieces ----------------------------------------------------------------------------


def test_idempotency_key_is_stable_for_the_same_action_and_new_for_another(tmp_path):
    from tools.customer_service import IssueRefundArgs

    same = IssueRefundArgs(order_id="o1001", amount=20, reason="damaged").identity()
    again = IssueRefundArgs(order_id=" #O1001", amount=20.0, reason="it arrived damaged").identity()
    other = IssueRefundArgs(order_id="O1001", amount=25, reason="damaged").identity()
    key = idempotency_key("t1", "help", "issue_refund", same)
    assert key == idempotency_key("t1", "help", "issue_refund", again)
    assert key != idempotency_key("t1", "help", "issue_refund", other)
    assert key != idempotency_key("t2", "help", "issue_refund", same)
    assert key != idempotency_key("t1", "other", "issue_refund", same)
    assert key != idempotency_key("t1", "help", "issue_refund", same, scope="again")


def test_the_database_enforces_one_row_per_action(tmp_path):
    from tools.customer_service import _refund

    ctx = ToolContext.from_settings(load_settings(data_dir=tmp_path), "t1")
    first = _refund(ctx, "O1001", 20.0, "damaged", "act-1")
    again = _refund(ctx, "O1001", 20.0, "damaged", "act-1")
    assert again == f"{first} {REPLAY_NOTE}"
    with sqlite3.connect(ctx.customer_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM refunds WHERE idempotency_key='act-1'").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO refunds (order_id, amount_cents, reason, created_at, idempotency_key)"
                         " VALUES ('O1002', 100, 'x', 'now', 'act-1')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO executed_actions (idempotency_key, tool, identity, outcome, executed_at)"
                         " VALUES ('act-1', 'issue_refund', '{}', 'x', 'now')")


async def test_no_action_starts_after_the_deadline(tmp_path):
    from agents.toolset import guard_actions, run_tool
    from tools.customer_service import issue_refund_tool

    ctx = ToolContext.from_settings(load_settings(data_dir=tmp_path), "t1")
    tool = issue_refund_tool(ctx)
    call = {"id": "s1", "tool": "issue_refund", "args": {"order_id": "O1001", "amount": 20.0, "reason": "damaged"}}
    with guard_actions(0.0):
        text, ok = await run_tool(tool, call, {"metadata": {"task_id": "help"}})  # type: ignore[arg-type]
    assert not ok and "did not run" in text
    assert not ctx.customer_db.exists() or effects({"data_dir": str(tmp_path)})[0] == 0


def test_side_effecting_agents_are_never_cached():
    from agents import AgentRegistry

    registry = AgentRegistry.builtin()
    assert not result_cache.cacheable(registry.get("support"))
    assert not result_cache.cacheable(registry.get("coder"))
    assert result_cache.cacheable(registry.get("writer"))
    assert result_cache.cacheable(registry.get("researcher"))


async def test_the_cache_opens_once_under_concurrent_first_calls(tmp_path):
    for n in range(5):
        settings = load_settings(data_dir=tmp_path / f"d{n}")
        caches = await asyncio.gather(*(result_cache._cache(settings) for _ in range(16)))
        assert len({id(c) for c in caches}) == 1


def test_a_retry_starts_from_what_the_crashed_attempt_spent():
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    def spend(tracker: Any, n: int) -> None:
        message = AIMessage("x", usage_metadata={"input_tokens": n, "output_tokens": 0, "total_tokens": n})
        tracker.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))

    key = attempt_key(f"t-{uuid.uuid4().hex}", "a")
    with pytest.raises(ConnectionError), track_usage(100, carry=key) as first:
        spend(first, 60)
        raise ConnectionError("drop")
    with track_usage(100, carry=key) as retry:
        assert retry.tokens_in == 60  # not from zero
        with pytest.raises(Exception, match="task_tokens"):
            spend(retry, 50)  # 110 > 100 over both attempts
    with pytest.raises(ValueError), track_usage(None, carry=key) as crashed:
        spend(crashed, 5)
        raise ValueError("bad")
    assert take_carried(key) == {"tokens_in": 5, "tokens_out": 0, "model_calls": 1, "cost_usd": 0.0}
    assert take_carried(key) is None
