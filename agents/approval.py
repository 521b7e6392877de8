"""Approval of high-risk tool calls: a human answers before the action runs.

Its own node, so resuming re-runs only the question, and the tool node after it runs the
approved calls exactly once.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from agents.registry import AgentSpec
from agents.state import SpecialistState
from agents.steps import ToolCallRecord
from core import review


class Approval:
    """The ``approve`` node of one agent's sub-graph."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def approve(self, state: SpecialistState) -> dict[str, Any]:
        """Ask a human about each high-risk call (a HITL request, core.review); the run goes on
        with each call approved or rejected."""
        task = state.get("task") or {}
        pending: list[ToolCallRecord] = []
        for call in state.get("pending") or []:
            if call.get("status") == "needs_approval":
                answer = interrupt(review.tool_approval_request(
                    task.get("id"), self.spec.name, call["tool"], call.get("args", {}),
                    call.get("thought", ""), state.get("trace") or [],
                ))
                approved, feedback = parse_approval(answer)
                call = {
                    **call,
                    "status": "approved" if approved else "rejected",
                    "feedback": feedback,
                }
            pending.append(call)
        return {"pending": pending}


parse_approval = review.read_tool_answer
"""Read a tool-approval answer: approved or not, and the reviewer's feedback (see core.review)."""
