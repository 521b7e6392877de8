"""The served supervisor with a scripted test model, for the scale-out tests' Aegra instances.

``graph`` is ``orchestrator.server.graph`` itself (the unchanged supervisor); what this module
adds is the model's choices, made by the project's ``TestChatModel`` (``responses`` by
schema name, simulated latency per call) so a run's plan and tool calls are known in advance:

- the goal names its plan: ``... [[plan:NAME]]`` picks ``PLANS[NAME]`` (unknown names: one
  writer task); ``[[slow:N]]`` in a task's instruction makes it take N lookup steps first,
  ``[[sleep:S]]`` one sandboxed ``run_python`` that sleeps S seconds;
  ``[[refund]]`` makes a support task issue one refund on order O1001 and then answer.
- every decision is a pure function of the prompt, so any instance gives the same answer, and
  each model step is appended to ``$SCALEOUT_CALL_LOG`` as ``pid plan GOAL`` or
  ``pid step GOAL/TASK`` (one line,
  one ``write``), which is how the tests see which process ran what, and how often.

``$SCALEOUT_HOLD_AFTER_REFUND_S`` > 0 stalls the refund tool's worker thread for that long
right after a refund is issued (committed, ledger row included) and before the tool step
returns, so a test can kill the process inside that window; a replayed outcome is not
stalled. Tool calls are logged as ``pid tool issued|replayed``.

The override is installed process-wide (as the default of the model factory's override
variable) because Aegra loads this module in its start-up task while runs execute in worker
tasks with contexts of their own.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from langchain_core.messages import BaseMessage

from core.models import TestChatModel
from core.models import factory as model_factory
from orchestrator.server import graph
from tools import customer_service
from tools.actions import REPLAY_NOTE

__all__ = ["PLANS", "graph"]

LATENCY_S = float(os.environ.get("SCALEOUT_LATENCY_S", "0.2"))
HOLD_AFTER_REFUND_S = float(os.environ.get("SCALEOUT_HOLD_AFTER_REFUND_S", "0") or 0)
_MARK = re.compile(r"\[\[(\w+)(?::(\w+))?\]\]")


def _task(id: str, agent: str, text: str, deps: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": id, "agent": agent, "instruction": f"{text} [[task:{id}]]", "depends_on": list(deps)}


PLANS: dict[str, list[dict[str, Any]]] = {
    # Three independent tasks, then one that needs them: two rounds of the supervisor.
    "fanout": [
        _task("a", "writer", "Write part a."),
        _task("b", "writer", "Write part b."),
        _task("c", "writer", "Write part c."),
        _task("d", "writer", "Join a, b and c.", deps=["a", "b", "c"]),
    ],
    # One quick refund and two slow lookups in the same round, then a summary.
    "refund": [
        _task("refund", "support", "Refund order O1001, it arrived damaged. [[refund]]"),
        _task("slow1", "analyst", "Crunch the numbers. [[sleep:5]]"),
        _task("slow2", "analyst", "Crunch more numbers. [[sleep:5]]"),
        _task("sum", "writer", "Summarise what was done.", deps=["refund", "slow1", "slow2"]),
    ],
}


def _text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


def _marks(text: str) -> dict[str, str]:
    return {name: value or "" for name, value in _MARK.findall(text)}


def _log(kind: str, marker: str) -> None:
    path = os.environ.get("SCALEOUT_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short write: atomic with O_APPEND
            f.write(f"{os.getpid()} {kind} {marker}\n")


def _plan(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    # The goal is the human message that starts "Goal:" (plan-library examples come before it).
    humans = [str(m.content) for m in messages if m.type == "human"]
    goal = next((h for h in humans if h.startswith("Goal:")), humans[-1] if humans else "")
    marks = _marks(goal)
    _log("plan", marks.get("goal", "?"))
    tasks = PLANS.get(marks.get("plan", ""), [_task("t1", "writer", "Answer the goal.")])
    # The goal's key in every instruction: tasks of different threads never share a cache entry.
    key = marks.get("goal", "?")
    return {"tasks": [{**t, "instruction": f"{t['instruction']} [[goal:{key}]]"} for t in tasks]}


def _step(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    human = [m for m in messages if m.type == "human"]
    marks = _marks(str(human[0].content)) if human else {}
    marker = f"{marks.get('goal', '?')}/{marks.get('task', '?')}"
    done = sum(1 for m in messages if m.type == "ai")  # one assistant turn per step taken
    _log("step", marker)
    if "refund" in marks and done == 0:
        return _action("issue_refund", order_id="O1001", amount=20.0, reason="arrived damaged")
    if "slow" in marks and done < int(marks["slow"] or 1):
        return _action("lookup_ticket", ticket_id=f"T{1001 + done}")
    if "sleep" in marks and done == 0:  # real time in the sandbox's subprocess, not the loop's
        return _action("run_python", code=f"import time\ntime.sleep({float(marks['sleep'] or 1)})\nprint('slept')")
    return {"thought": "done", "action": "final_answer", "action_input": {},
            "answer": f"result-{marks.get('task', '?')}", "citations": []}


def _action(name: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"use {name}", "action": name, "action_input": args, "answer": "", "citations": []}


def _final(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    return {"answer": "result", "citations": []}


_issue_refund = customer_service._refund


def _refund_then_hold(*args: Any, **kwargs: Any) -> str:
    outcome = _issue_refund(*args, **kwargs)  # committed: the refund and its ledger row
    replay = REPLAY_NOTE in outcome
    _log("tool", "replayed" if replay else "issued")
    if not replay and HOLD_AFTER_REFUND_S > 0:
        time.sleep(HOLD_AFTER_REFUND_S)  # a worker thread (asyncio.to_thread): leases go on
    return outcome


customer_service._refund = _refund_then_hold  # looked up at call time by the refund tool

MODEL = TestChatModel(
    latency_s=LATENCY_S,
    responses={
        "Plan": _plan,
        "AgentStep": _step,
        "FinalAnswer": _final,
        "Assessment": {"decision": "continue", "reason": "on track"},
        "Verdict": {"passed": True, "feedback": ""},
    },
    text=lambda messages: "SYNTHESIS: " + " | ".join(
        sorted(set(re.findall(r"result-\w+", _text(messages))))
    ),
)
model_factory._override = ContextVar("model_override", default=MappingProxyType({"*": MODEL}))
