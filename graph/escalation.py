"""Escalating recovery for a failed task, one step per failure, each recorded in its history.

1. adjusted retry — the same agent again, told the error (skipped when the error repeats);
2. stronger model — the same agent on the next model tier (``Settings.tiers``), told the
   error; once per tier, up to the top of the ladder;
3. reassignment — another agent that has every tool the failed agent had (a support action
   never goes to the coder, code never to the writer), the best match among those; once;
4. alternative path — the assessor may replan around the failure (see assessment);
5. manual intervention — when review.failures is on, a human retries, edits, skips or aborts.
Transient errors were already retried with backoff by the node's RetryPolicy.
"""

from __future__ import annotations

from langgraph.types import interrupt

from agents import AgentRegistry, UnknownAgentError
from agents.registry import NoAgentAvailableError
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
    ran_on = failed_model(record, registry, task, settings)
    stronger = settings.stronger_model(ran_on)
    if stronger is not None:
        metrics = record.get("metrics") or {}
        spent = (f"{metrics.get('latency_s', 0):.0f} s, "
                 f"{metrics.get('tokens_in', 0) + metrics.get('tokens_out', 0)} tokens so far")
        return {
            "status": "pending", "model": stronger,
            "history": [*history, f"escalation: stronger model {stronger} (failed on {ran_on}; {spent})"],
            "feedback": f"An attempt on a smaller model failed: {error}. Fix that and try again.",
        }
    if not any(h.startswith("escalation: reassigned") for h in record.get("history", [])):
        needed = needed_tools(registry, task)
        incapable = {s.name for s in registry.specs() if not needed <= set(s.builtin_tools)}
        excluded = sorted({*failed_agents, *incapable})
        try:
            alternative = registry.best_alternative(task, excluded)
        except (UnknownAgentError, NoAgentAvailableError):
            alternative = None
        if alternative is not None:
            # The dispatcher excludes ``failed_agents``: the agents without the tools are
            # listed there too, so worker selection cannot pick one of them either.
            return {
                "status": "pending", "failed_agents": excluded,
                "history": [*history, f"escalation: reassigned to {alternative.name}"],
                "feedback": f"Another agent failed this task: {error}.",
            }
        history.append(
            "escalation: no other agent has the tools this task needs ("
            + ", ".join(sorted(needed)) + ")"
        )
    if settings.review.failures:
        return _ask_human(task, error, [*record.get("history", []), *history], history)
    return {"history": [*history, "escalation: exhausted"], "settled": True,
            "failed_agents": failed_agents}


def failed_model(record: TaskRecord, registry: AgentRegistry, task: Task, settings: Settings) -> str:
    """The model the failed attempt ran on: the one its metrics name, else the one the
    record or the agent's role says."""
    ran_on = (record.get("metrics") or {}).get("model") or record.get("model")
    if ran_on:
        return str(ran_on)
    try:
        return settings.model_name_for(registry.get(task.agent).model_role)
    except UnknownAgentError:
        return settings.model


def needed_tools(registry: AgentRegistry, task: Task) -> set[str]:
    """The built-in tools an agent needs to take ``task`` over: those of the agent it was
    planned for (what the work was set up to use; an agent missing one could only talk
    about the work, and its answer would bury the failure). An unknown agent needs none."""
    try:
        return set(registry.get(task.agent).builtin_tools)
    except UnknownAgentError:
        return set()


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
