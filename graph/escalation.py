"""Escalating recovery for a failed task, one step per failure, each recorded in its history.

1. adjusted retry — the same agent again, told the error (skipped when the error repeats);
2. reassignment — another capable agent;
3. alternative path — the assessor may replan around the failure (see assessment);
4. manual intervention — when review.failures is on, a human retries, edits, skips or aborts.
Transient errors were already retried with backoff by the node's RetryPolicy.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from agents import AgentRegistry, UnknownAgentError
from graph.state import Task, TaskRecord
from orchestrator.settings import Settings


class FailureDecision(BaseModel):
    """A human's answer when a task has failed every automatic recovery."""

    action: Literal["retry", "edit", "skip", "abort"]
    instruction: str = ""


class AbortRun(Exception):
    """A human chose to abort the run at a failure."""


def _repeated(record: TaskRecord) -> bool:
    errors = [h for h in record.get("history", []) if h.startswith("failed: ")]
    return len(errors) >= 2 and errors[-1] == errors[-2]


def escalate(record: TaskRecord, registry: AgentRegistry, settings: Settings) -> TaskRecord:
    """The record after one escalation step: pending again with guidance, or settled."""
    task = Task.model_validate(record["task"])
    error = record.get("error") or "unknown error"
    history = [*record.get("history", []), f"failed: {error}"]
    failed_agents = sorted({*record.get("failed_agents", []), task.agent})
    attempts = record.get("attempts", 1)

    if attempts == 1 and not _repeated({**record, "history": history}):
        return {
            **record, "status": "pending", "history": [*history, "escalation: adjusted retry"],
            "feedback": f"Your previous attempt failed: {error}. Fix that and try again.",
        }
    if attempts <= 2:
        try:
            alternative = registry.select(task, "fallback", exclude=frozenset(failed_agents))
        except UnknownAgentError:
            alternative = None
        if alternative is not None and alternative.name not in failed_agents:
            return {
                **record, "status": "pending", "failed_agents": failed_agents,
                "history": [*history, f"escalation: reassigned to {alternative.name}"],
                "feedback": f"Another agent failed this task: {error}.",
            }
    if settings.review.failures:
        return _ask_human(record, task, error, history)
    return {**record, "history": [*history, "escalation: exhausted"], "settled": True,
            "failed_agents": failed_agents}


def _ask_human(record: TaskRecord, task: Task, error: str, history: list[str]) -> TaskRecord:
    answer: Any = interrupt(
        {"type": "task_failure", "task": task.model_dump(), "error": error, "history": history,
         "actions": ["retry", "edit", "skip", "abort"]}
    )
    try:
        decision = FailureDecision.model_validate(answer)
    except ValidationError:
        decision = FailureDecision(action="skip")
        history = [*history, f"invalid answer {answer!r}; skipped"]
    if decision.action == "abort":
        raise AbortRun(f"aborted by a human at task {task.id}: {error}")
    if decision.action == "skip":
        return {**record, "status": "skipped", "settled": True,
                "history": [*history, "escalation: skipped by a human"]}
    new_task = task
    if decision.action == "edit" and decision.instruction.strip():
        new_task = task.model_copy(update={"instruction": decision.instruction})
    return {**record, "status": "pending", "task": new_task.model_dump(), "failed_agents": [],
            "history": [*history, f"escalation: {decision.action} by a human"], "feedback": ""}
