"""Escalating recovery for a failed task, one step per failure, each recorded in its history.

1. adjusted retry — the same agent again, told the error (skipped when the error repeats);
2. reassignment — another agent that matches the task at least half as well (and can write
   files, when the failed work was files);
3. alternative path — the assessor may replan around the failure (see assessment);
4. manual intervention — when review.failures is on, a human retries, edits, skips or aborts.
Transient errors were already retried with backoff by the node's RetryPolicy.
"""

from __future__ import annotations

from langgraph.types import interrupt

from agents import AgentRegistry, AgentSpec, UnknownAgentError
from core import review
from core.settings import Settings
from graph.state import Task, TaskRecord


class AbortRun(Exception):
    """A human chose to abort the run at a failure."""


def escalate(record: TaskRecord, registry: AgentRegistry, settings: Settings) -> TaskRecord:
    """The update after one escalation step: pending again with guidance, or settled.

    Its ``history`` holds only the new entries (the blackboard reducer appends them).
    """
    task = Task.model_validate(record["task"])
    error = record.get("error") or "unknown error"
    earlier = [h for h in record.get("history", []) if h.startswith("failed: ")]
    history = [f"failed: {error}"]
    failed_agents = sorted({*record.get("failed_agents", []), task.agent})
    attempts = record.get("attempts", 1)

    # Stall guard: the same error twice means retrying as-is will not help.
    if attempts == 1 and f"failed: {error}" not in earlier:
        return {
            "status": "pending", "history": [*history, "escalation: adjusted retry"],
            "feedback": f"Your previous attempt failed: {error}. Fix that and try again.",
        }
    if attempts <= 2:
        try:
            alternative = registry.select(task, "fallback", exclude=frozenset(failed_agents))
        except UnknownAgentError:
            alternative = None
        if alternative is not None and alternative.name not in failed_agents and _capable(
            registry, task, record, alternative
        ):
            return {
                "status": "pending", "failed_agents": failed_agents,
                "history": [*history, f"escalation: reassigned to {alternative.name}"],
                "feedback": f"Another agent failed this task: {error}.",
            }
    if settings.review.failures:
        return _ask_human(task, error, [*record.get("history", []), *history], history)
    return {"history": [*history, "escalation: exhausted"], "settled": True,
            "failed_agents": failed_agents}


def _capable(registry: AgentRegistry, task: Task, record: TaskRecord, alternative: AgentSpec) -> bool:
    """Whether ``alternative`` can plausibly do what ``task.agent`` failed at: it matches the
    task at least half as well (the bar ``checked`` selection uses), and when the failed work
    was files (code whose tests failed) it can write files. Otherwise a coding task would go
    to an agent that can only talk about code, and its answer would bury the failure."""
    if record.get("artifacts") and "write_file" not in alternative.builtin_tools:
        return False
    text = f"{task.instruction} {task.acceptance_criteria}"
    return registry.score(text, alternative.name) >= registry.score(text, task.agent) / 2


def _ask_human(task: Task, error: str, full_history: list[str], history: list[str]) -> TaskRecord:
    decision = review.read_failure_answer(
        interrupt(review.task_failure_request(task.model_dump(), error, full_history))
    )
    if decision.note:
        history = [*history, decision.note]
    if decision.action == "abort":
        raise AbortRun(f"aborted by a human at task {task.id}: {error}")
    if decision.action == "skip":
        return {"status": "skipped", "settled": True,
                "history": [*history, "escalation: skipped by a human"]}
    new_task = task
    if decision.action == "edit" and decision.instruction.strip():
        new_task = task.model_copy(update={"instruction": decision.instruction})
    return {"status": "pending", "task": new_task.model_dump(), "failed_agents": [],
            "history": [*history, f"escalation: {decision.action} by a human"], "feedback": ""}
