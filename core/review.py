"""Answers to the run's interrupts: one decision, translated for each kind of pause.

Used by the CLI and by SDK clients, so "approve" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

INTERRUPT_TYPES = ("plan_review", "tool_approval", "answer_review", "task_failure")


@dataclass(frozen=True)
class ReviewDecision:
    """What a human decided at a pause."""

    action: Literal["approve", "edit", "reject"]
    tasks: list[dict[str, Any]] | None = None
    """Edited plan tasks (edit at a plan review)."""
    text: str = ""
    """Feedback (reject), or the edited answer / instruction (edit)."""


def resume_value(interrupt_value: Any, decision: ReviewDecision) -> dict[str, Any]:
    """The resume payload the interrupted node expects for ``decision``."""
    kind = interrupt_value.get("type") if isinstance(interrupt_value, dict) else None
    if kind == "plan_review":
        if decision.action == "edit":
            if decision.tasks is None:
                raise ValueError("editing a plan needs the edited tasks")
            return {"action": "edit", "tasks": decision.tasks}
        return {"action": decision.action, "feedback": decision.text}
    if kind == "tool_approval":
        if decision.action == "edit":
            raise ValueError("a tool action can only be approved or rejected")
        return {"approved": decision.action == "approve", "feedback": decision.text}
    if kind == "answer_review":
        return {"action": decision.action, "answer": decision.text, "feedback": decision.text}
    if kind == "task_failure":
        action = {"approve": "retry", "edit": "edit", "reject": "skip"}[decision.action]
        return {"action": action, "instruction": decision.text}
    raise ValueError(f"unknown interrupt {interrupt_value!r}; expected one of {INTERRUPT_TYPES}")
