"""Decisions on a pause: the first recorded decision acts, an answer answers only its question.

Two processes answer one refund approval at the same moment, one approving, one rejecting,
while the customer database is briefly locked so both reach the approval together: in both
the decision recorded first is the one that acts (the refund exists exactly when the ledger
says approved), and the other process is told its decision was not applied and exits 1.

An answer sent for the refund that arrives after the refund was answered, when the same
approval node asks about the ticket update next (LangGraph hands an answer for a task's
first interrupt id on to its next interrupt), answers nothing: the ticket update stays
paused and does not run.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command, Interrupt

from core.models.factory import use_model
from core.review import ReviewDecision, resume_value
from core.settings import load_settings
from graph.persistence import open_checkpointer
from graph.supervisor import build_graph
from tests.scripting import context_of
from tests.test_side_effects import cfg, db_of, effects, support_team

ROOT = Path(__file__).resolve().parent.parent

RESUME_SCRIPT = textwrap.dedent(
    '''
    import sys
    from pathlib import Path

    import agents.approval as approval

    real = approval.record_approvals

    def marked(ctx, writes):
        writes = list(writes)
        if any(w.decision in ("approved", "rejected") for w in writes):
            Path(sys.argv[1]).touch()  # this process has its answer and is about to record it
        return real(ctx, writes)

    approval.record_approvals = marked

    from core.models.factory import use_model
    from orchestrator.cli import main
    from tests.test_side_effects import support_team

    with use_model(support_team().model):
        sys.exit(main(["resume", *sys.argv[2:], "--json"]))
    '''
)


async def _paused_at_refund(opts: dict[str, Any], thread: str) -> list[Interrupt]:
    async with open_checkpointer(load_settings(**opts)) as saver:
        graph = build_graph(checkpointer=saver)
        c = cfg(opts, thread)
        with use_model(support_team().model):
            await graph.ainvoke({"goal": "refund O1001 for C001"}, c, durability="sync", context=context_of(c))
        state = await graph.aget_state({"configurable": {"thread_id": thread}})
    return list(state.interrupts)


def _ledger(opts: dict[str, Any], tool: str) -> str | None:
    with sqlite3.connect(db_of(opts)) as conn:
        row = conn.execute("SELECT decision FROM action_approvals WHERE tool=?", (tool,)).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("first_started", ["approve", "reject"])
def test_two_processes_racing_approve_and_reject_act_on_the_first_recorded(
    tmp_path: Path, options: Any, first_started: str,
) -> None:
    opts = options(review={"high_risk_tools": True})
    thread = f"race-{first_started}"
    pauses = asyncio.run(_paused_at_refund(opts, thread))
    assert [p.value["tool"] for p in pauses] == ["issue_refund"]
    pause = pauses[0]
    assert pause.value["action_key"] and pause.value["question"]

    flags = {"approve": ["--approve", pause.id], "reject": ["--reject", pause.id, "not this one"]}
    order = [first_started, "reject" if first_started == "approve" else "approve"]
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "LANGSMITH_TRACING": "false",
           "ORCHESTRATOR_DATA_DIR": opts["data_dir"]}
    lock = sqlite3.connect(db_of(opts), timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the customer database, briefly locked
    procs = {}
    try:
        for decision in order:
            marker = tmp_path / f"{decision}.ready"
            procs[decision] = subprocess.Popen(
                [sys.executable, str(script), str(marker), thread, *flags[decision]],
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while not all((tmp_path / f"{d}.ready").exists() for d in order):
            assert time.monotonic() < deadline, "the processes never reached the approval"
            assert all(p.poll() is None for p in procs.values()), {
                d: p.communicate()[1][-2000:] for d, p in procs.items() if p.poll() is not None}
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        lock.rollback()
        lock.close()
    results = {}
    for decision, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[decision] = (proc.returncode, json.loads(out) if out.strip() else {}, err)

    recorded = _ledger(opts, "issue_refund")
    assert recorded in ("approved", "rejected")
    winner = "approve" if recorded == "approved" else "reject"
    loser = "reject" if winner == "approve" else "approve"
    assert effects(opts)[0] == (1 if recorded == "approved" else 0)  # acted on the ledger's
    code, outcome, err = results[winner]
    assert code in (0, 3) and "not_applied" not in outcome, (code, err[-2000:])
    code, outcome, err = results[loser]
    assert code == 1, (code, err[-2000:])
    assert f"your decision ({loser.rstrip('e')}ed) on issue_refund" in err
    assert f"was not applied: it was {recorded} by an answer recorded first" in err
    assert len(outcome["not_applied"]) == 1 and outcome["not_applied"][0] in err


async def test_an_answer_for_an_answered_pause_does_not_answer_the_next(tmp_path: Path) -> None:
    """A model that asks for the refund and the ticket update in one step: both questions
    come from one run of the approval node, one after the other."""
    from langchain_core.messages import AIMessage

    from core.models import TestChatModel
    from tests.test_agents_specialist import (
        REFUND,
        REGISTRY,
        SUPPORT_TASK,
        Models,
        refunds,
        run_config,
        supervisor_like,
        ticket_status,
    )

    ticket = {"ticket_id": "T501", "status": "resolved", "note": "Refunded $20."}
    worker = TestChatModel(script=[
        AIMessage("", tool_calls=[{"name": "issue_refund", "args": REFUND["action_input"], "id": "r1"},
                                  {"name": "update_ticket", "args": ticket, "id": "u1"}]),
        AIMessage("", tool_calls=[{"name": "FinalAnswer", "args": {"answer": "Done."}, "id": "f1"}]),
    ])
    graph = supervisor_like(REGISTRY.get("support"), Models(worker))
    config = run_config(tmp_path, mode="native")
    first = await graph.ainvoke({"task": SUPPORT_TASK}, config, context=context_of(config))
    (refund,) = first["__interrupt__"]
    assert refund.value["tool"] == "issue_refund"
    approve_refund = {refund.id: resume_value(refund.value, ReviewDecision("approve"))}

    second = await graph.ainvoke(Command(resume=approve_refund), config, context=context_of(config))
    (pending,) = second["__interrupt__"]
    assert pending.value["tool"] == "update_ticket"
    assert refunds(tmp_path) == 0  # both wait until both are answered

    # A second client's approval of the refund, sent before it saw the first one's answer,
    # arrives now: it names the refund's question, so the ticket update stays paused.
    late = await graph.ainvoke(Command(resume=approve_refund), config, context=context_of(config))
    (still,) = late["__interrupt__"]
    assert still.value["tool"] == "update_ticket" and ticket_status(tmp_path) == "open"

    rejected = {still.id: resume_value(still.value, ReviewDecision("reject", text="not yet"))}
    done = await graph.ainvoke(Command(resume=rejected), config, context=context_of(config))
    assert "__interrupt__" not in done and done["result"]["output"] == "Done."
    assert refunds(tmp_path) == 1 and ticket_status(tmp_path) == "open"
