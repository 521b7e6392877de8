"""Approval of high-risk tool calls: a human answers before the action runs, once.

Its own node, so resuming re-runs only the question, and the tool node after it runs the
approved calls. Every decision is recorded in the action ledger under the action's
idempotency key (``agents.toolset.action_key``), so a task that is retried, restarted from
scratch, reassigned or forked reuses it: an action is never put to a human twice, and a
decision never applies to another action (another key). An action the tool's rules would
refuse right now is reported to the agent instead of being put to a human.

Resume values are matched to ``interrupt`` calls by position, so which calls are asked
must not change between the executions of one question sequence: the ledger remembers the
sequence (the node's checkpoint namespace) that asked each action and what was skipped.

Two processes may answer one question at the same moment (approve in one, reject in the
other). The ledger keeps the first decision recorded and each process reads back, in the
transaction that wrote its own, the decision that stands: every process acts on that one,
and the one whose decision lost says so in the call's feedback. An answer that names
another question (sent for a pause answered meanwhile, which LangGraph hands on to the
node's next question) answers nothing: the question is asked again
(``core.review.answers_other_question``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.prompts import TraceEntry
from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of, thread_id_of
from agents.state import SpecialistState
from agents.steps import CallStatus, ToolCallRecord
from agents.toolset import action_key, agent_tools
from core import review
from tools.actions import ApprovalRecord, ApprovalWrite
from tools.context import ToolContext
from tools.effects import action_problem, ledger_approvals, parsed_args, record_approvals


class Approval:
    """The ``approve`` node of one agent's sub-graph."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def approve(self, state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Ask a human about each high-risk call not decided before; record every answer."""
        config = get_config()
        ctx = context_of(runtime)
        tool_ctx = ctx.tools(thread_id_of(config))
        tools, _ = await agent_tools(self.spec, ctx, thread_id_of(config))
        by_name = {t.name: t for t in tools}
        task = state.get("task") or {}
        sequence = str((config.get("configurable") or {}).get("checkpoint_ns") or "")
        calls = list(state.get("pending") or [])
        keys = {
            i: key for i, c in enumerate(calls)
            if c.get("status") == "needs_approval" and (tool := by_name.get(c["tool"])) is not None
            and (key := action_key(tool, c.get("args", {}), config)) is not None
        }
        known = await asyncio.to_thread(ledger_approvals, tool_ctx, keys.values())
        plan, opened = await asyncio.to_thread(
            _plan, tool_ctx, by_name, calls, keys, known, sequence
        )
        await asyncio.to_thread(record_approvals, tool_ctx, opened)

        answered: list[tuple[int, ApprovalWrite]] = []
        pending: list[ToolCallRecord] = []
        try:
            for i, call in enumerate(calls):
                how = plan.get(i)
                if how is None:
                    pending.append(call)
                elif how[0] == "reuse":
                    pending.append({**call, "status": how[1], "feedback": how[2]})
                elif how[0] == "blocked":
                    pending.append({**call, "status": "invalid", "feedback": how[2]})
                else:
                    approved, feedback = ask(task, self.spec.name, call, state.get("trace") or [],
                                             keys.get(i))
                    pending.append({**call, "status": "approved" if approved else "rejected",
                                    "feedback": feedback})
                    if i in keys:
                        tool = by_name[call["tool"]]
                        answered.append((i, ApprovalWrite(
                            keys[i], tool.name, _identity(tool, call),
                            "approved" if approved else "rejected", feedback, sequence)))
        except GraphBubbleUp:
            # Paused on the next question: keep the answers given so far.
            await asyncio.to_thread(record_approvals, tool_ctx, [w for _, w in answered])
            raise
        standing = await asyncio.to_thread(record_approvals, tool_ctx, [w for _, w in answered])
        for i, write in answered:
            record = standing.get(write.key)
            if record is not None and record.decision in ("approved", "rejected") \
                    and record.decision != write.decision:
                # Another answer was recorded first: it is the one that acts, here too.
                pending[i] = {**pending[i], "status": record.decision, "feedback": (
                    f"{record.decision} by the answer recorded first"
                    + (f" ({record.feedback})" if record.feedback else "")
                    + f"; this answer ({write.decision}) was not applied")}
        return {"pending": pending}


def ask(
    task: dict[str, Any], agent: str, call: ToolCallRecord, trace: Sequence[TraceEntry],
    action_key: str | None = None,
) -> tuple[bool, str]:
    """Put one call to a human (a HITL request through a LangGraph interrupt); read the answer.

    An answer that names another question is no answer to this one: ask again (a new
    position, so replays read the same answers in the same places)."""
    request = review.tool_approval_request(
        task.get("id"), agent, call["tool"], call.get("args", {}), call.get("thought", ""), trace,
        action_key,
    )
    answer = interrupt(request)
    while review.answers_other_question(answer, request):
        answer = interrupt(request)
    return parse_approval(answer)


Plan = dict[int, tuple[str, CallStatus, str]]
"""call index -> ("ask" | "reuse" | "blocked", status, feedback); absent: not a question."""


def _identity(tool: BaseTool, call: ToolCallRecord) -> dict[str, Any]:
    parsed = parsed_args(tool, call.get("args", {}))
    return parsed.identity() if parsed is not None else dict(call.get("args", {}))


def _plan(
    tool_ctx: ToolContext, by_name: dict[str, BaseTool], calls: list[ToolCallRecord],
    keys: dict[int, str], known: dict[str, ApprovalRecord], sequence: str,
) -> tuple[Plan, list[ApprovalWrite]]:
    """Which calls to ask, reuse or report as blocked, and the ledger rows that fix that
    choice for this question sequence (blocking: the rule checks read the database)."""
    plan: Plan = {}
    opened: list[ApprovalWrite] = []
    for i, call in enumerate(calls):
        if call.get("status") != "needs_approval":
            continue
        key = keys.get(i)
        if key is None:  # not an idempotent action (or arguments its schema refuses): ask
            plan[i] = ("ask", "needs_approval", "")
            continue
        record = known.get(key)
        tool = by_name[call["tool"]]
        if record is not None and record.asked_in == sequence:  # this sequence decided it
            if record.decision == "blocked":
                plan[i] = ("blocked", "invalid", record.feedback)
            else:
                plan[i] = ("ask", "needs_approval", "")  # answered positions replay, no human
            continue
        if record is not None and record.decision in ("approved", "rejected"):
            feedback = record.feedback or f"{record.decision} earlier (the same action)"
            plan[i] = ("reuse", "approved" if record.decision == "approved" else "rejected", feedback)
            continue
        parsed = parsed_args(tool, call.get("args", {}))
        problem = action_problem(tool_ctx, tool, parsed) if parsed is not None else None
        if problem:
            plan[i] = ("blocked", "invalid", f"not put to a reviewer: {problem}")
            opened.append(ApprovalWrite(key, tool.name, _identity(tool, call), "blocked",
                                        plan[i][2], sequence))
        else:
            plan[i] = ("ask", "needs_approval", "")
            opened.append(ApprovalWrite(key, tool.name, _identity(tool, call), None, "", sequence))
    return plan, opened


parse_approval = review.read_tool_answer
"""Read a tool-approval answer: approved or not, and the reviewer's feedback (see core.review)."""
