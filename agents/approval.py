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


class Approval:
    """The ``approve`` node of one agent's sub-graph."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def approve(self, state: SpecialistState) -> dict[str, Any]:
        """Ask a human about each high-risk call; the resume value is {approved, feedback}."""
        task = state.get("task") or {}
        pending: list[ToolCallRecord] = []
        for call in state.get("pending") or []:
            if call.get("status") == "needs_approval":
                answer = interrupt(
                    {
                        "type": "tool_approval",
                        "task_id": task.get("id"),
                        "agent": self.spec.name,
                        "tool": call["tool"],
                        "args": call.get("args", {}),
                    }
                )
                approved, feedback = parse_approval(answer)
                call = {
                    **call,
                    "status": "approved" if approved else "rejected",
                    "feedback": feedback,
                }
            pending.append(call)
        return {"pending": pending}


def parse_approval(answer: Any) -> tuple[bool, str]:
    """Read a tool-approval resume value: ``{"approved": bool, "feedback": str}`` (a bare
    bool is accepted too). Anything else counts as a rejection, so nothing runs by mistake."""
    if isinstance(answer, bool):
        return answer, ""
    if isinstance(answer, dict):
        approved = answer.get("approved")
        feedback = str(answer.get("feedback") or "").strip()
        if isinstance(approved, bool):
            return approved, feedback
        return False, feedback or f"unrecognised approval answer {answer!r}"
    return False, f"unrecognised approval answer {answer!r}"
