"""After each round: recover failed tasks, let the supervisor revise the rest, detect stalls."""

from __future__ import annotations

import json
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import BaseModel, Field

from agents import AgentRegistry, RunContext
from agents.profile import ModelProfile
from core.models import StructuredOutputError, achat_model, ainvoke_structured
from core.settings import Settings
from core.text import truncate_to_tokens
from core.usage import track_usage
from graph import prompts
from graph.dag import status_of
from graph.escalation import AbortRun, escalate
from graph.planning.planner import adopt_plan, check_tasks
from graph.runtime import context_for, emit, run_context
from graph.state import OrchestratorState, Task, TaskMetrics, TaskRecord, merge_results

RESULT_PREVIEW_TOKENS = 150
"""How much of each done result the assessor sees: enough to judge, cheap to send."""


class Assessment(BaseModel):
    """The supervisor's decision after a round of results."""

    decision: Literal["continue", "revise", "finish"]
    reason: str = Field(default="", description="One sentence.")
    tasks: list[Task] = Field(
        default_factory=list, description="With 'revise': the new list of pending tasks."
    )


def _assessment_prompt(state: OrchestratorState, pending: list[Task]) -> str:
    results = state.get("results", {})
    lines = [f"Goal: {state['goal']}", "", "Finished tasks:"]
    for task_id, record in results.items():
        if record.get("status") == "done":
            preview = truncate_to_tokens(record.get("output", ""), RESULT_PREVIEW_TOKENS)
            lines.append(f"- {task_id} ({record['task']['agent']}) done: {preview}")
        elif record.get("status") in ("failed", "skipped"):
            lines.append(f"- {task_id} {record['status']}: {record.get('error')}")
    lines += ["", "Pending tasks:", json.dumps([t.model_dump() for t in pending], indent=1)]
    return "\n".join(lines)


async def judge(state: OrchestratorState, pending: list[Task], settings: Settings,
                registry: AgentRegistry) -> tuple[Assessment | None, TaskMetrics]:
    """The supervisor's verdict on the results so far (None if its output was unusable)."""
    with track_usage() as usage:
        try:
            result = await ainvoke_structured(
                await achat_model(settings, "supervisor"),
                Assessment,
                [SystemMessage(prompts.ASSESSOR.format(catalogue=registry.catalogue())),
                 HumanMessage(_assessment_prompt(state, pending))],
            )
            verdict: Assessment | None = result.value
        except StructuredOutputError as err:
            emit("assessment_failed", error=str(err))
            verdict = None  # an unusable assessment changes nothing; the plan stands
    return verdict, usage.metrics(settings.model_for("supervisor"))


def may_finish(results: dict[str, TaskRecord], pending: list[Task]) -> bool:
    """Whether a "finish" verdict may skip ``pending``: only when some task is done (else
    nothing can answer the goal) and none of them is a failed task's retry (escalation has
    just decided to run it again; a small model's verdict must not undo that)."""
    done = any(r.get("status") == "done" for r in results.values())
    retrying = any(results.get(t.id, {}).get("attempts", 0) for t in pending)
    return done and not retrying


def wants_assessment(
    state: OrchestratorState, settings: Settings, profile: ModelProfile, pending: bool
) -> bool:
    """Whether the supervisor's model looks at results before pending tasks start (only a
    model the profile trusts with it: ``ModelProfile.model_assessment``)."""
    return (pending and settings.adaptive_replanning and profile.model_assessment
            and state.get("revisions", 0) < settings.limits.max_plan_revisions)


def apply_verdict(state: OrchestratorState, results: dict[str, TaskRecord], tasks: list[Task],
                  verdict: Assessment | None, settings: Settings, registry: AgentRegistry,
                  update: dict[str, Any]) -> Command[Literal["dispatch", "synthesize"]]:
    """Continue, finish early, or adopt a revision of the tasks that have not started."""
    revisions = state.get("revisions", 0)
    pending = [t for t in tasks if status_of(results, t.id) == "pending"]
    if verdict is None or verdict.decision == "continue" or not pending:
        return Command(goto="dispatch", update=update)
    if verdict.decision == "finish" and not may_finish(results, pending):
        emit("finish_refused", reason=verdict.reason)
        return Command(goto="dispatch", update=update)
    if verdict.decision == "finish":
        reason = f"supervisor finished early: {verdict.reason}"
        skipped = {t.id: TaskRecord(task=t.model_dump(), status="skipped", settled=True,
                                    error="not needed: " + verdict.reason) for t in pending}
        return Command(goto="synthesize",
                       update={**update, "results": {**update.get("results", {}), **skipped}, "stop_reason": reason})

    kept = [t for t in tasks if status_of(results, t.id) != "pending"]
    check = check_tasks([t.model_dump() for t in verdict.tasks], settings, registry, tuple(t.id for t in kept))
    if check.error is not None:
        emit("revision_rejected", error=check.error)
        return Command(goto="dispatch", update=update)
    if [t.model_dump() for t in check.tasks] == [t.model_dump() for t in pending]:
        # Stall guard: a revision that changes nothing still counts against the cap.
        return Command(goto="dispatch", update={**update, "revisions": revisions + 1})
    check.tasks = kept + check.tasks
    adopted = adopt_plan(state, check, f"revised: {verdict.reason}", "model")
    return Command(goto="dispatch", update={**update, **adopted, "revisions": revisions + 1})


async def assess(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[Literal["dispatch", "synthesize"]]:
    """Escalate failures, optionally revise pending tasks, then continue or finish."""
    settings, registry = await run_context(runtime, state)
    results = dict(state.get("results", {}))
    tasks = [Task.model_validate(t) for t in state.get("tasks", [])]
    changed: dict[str, TaskRecord] = {}

    for task in tasks:
        record = results.get(task.id, {})
        if record.get("status") == "failed" and not record.get("settled"):
            try:
                changed[task.id] = escalate(record, registry, settings)
            except AbortRun as err:
                emit("stopped", reason=str(err))
                return Command(goto="synthesize", update={"results": changed, "stop_reason": str(err)})
            emit("escalation", task_id=task.id, step=changed[task.id]["history"][-1])
    results = merge_results(results, changed)
    # A human may have edited a failed task's instruction: the plan follows the record.
    tasks = [Task.model_validate(changed[t.id]["task"]) if "task" in changed.get(t.id, {}) else t for t in tasks]
    update: dict[str, Any] = {"results": changed, "tasks": [t.model_dump() for t in tasks]}

    pending = [t for t in tasks if status_of(results, t.id) == "pending"]
    done = any(r.get("status") == "done" for r in results.values())
    if not done or not wants_assessment(state, settings, context_for(runtime, state).profile, bool(pending)):
        # Only failures so far: there is no result to judge, and escalation has decided.
        return Command(goto="dispatch", update=update)
    verdict, usage = await judge(state | {"results": results}, pending, settings, registry)
    update["usage"] = [usage]
    return apply_verdict(state, results, tasks, verdict, settings, registry, update)
