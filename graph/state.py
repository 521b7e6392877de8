"""The supervisor's state: the plan (a task DAG), the blackboard of results, plan versions.

State values are plain JSON-compatible dicts so checkpoints, the LangGraph server and SDK
clients all see the same thing; the pydantic models below validate them at the boundaries.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import add_messages

from core.types import Plan, PlanVersion, Task, TaskRecord, TaskStatus
from core.types import RunStatus as _CoreRunStatus
from core.usage import SUMMED_METRICS, TaskMetrics

__all__ = [
    "SUMMED_METRICS",
    "OrchestratorInput",
    "OrchestratorState",
    "Plan",
    "PlanVersion",
    "RunStatus",
    "Task",
    "TaskMetrics",
    "TaskRecord",
    "TaskStatus",
]

RunStatus = _CoreRunStatus | Literal["stopped"]
"""A run's status. ``stopped``: the run ended with an answer but with tasks of its plan not
done (never started, skipped or failed: a budget, a cap, a stall, a rejected plan, an abort,
a failure escalation gave up on); ``stop_reason`` says why. ``completed`` only when every
task of the plan is done. ``failed``: no task is done."""


def merge_results(left: dict[str, TaskRecord], right: dict[str, TaskRecord]) -> dict[str, TaskRecord]:
    """Reducer for the blackboard: parallel workers each write their own task id.

    A write updates the task's record; ``history`` entries are appended and usage
    counters in ``metrics`` are added, so every attempt stays accounted for.
    """
    merged = dict(left or {})
    for task_id, update in (right or {}).items():
        old = merged.get(task_id, {})
        record: TaskRecord = {**old, **update}
        if "history" in update:
            record["history"] = [*old.get("history", []), *update["history"]]
        if "metrics" in update and old.get("metrics"):
            metrics = {**old["metrics"], **update["metrics"]}
            for key in SUMMED_METRICS:
                if key in update["metrics"]:
                    metrics[key] = old["metrics"].get(key, 0) + update["metrics"][key]  # type: ignore[literal-required]
            record["metrics"] = metrics  # type: ignore[typeddict-item]
        merged[task_id] = record
    return merged


def merge_result_batches(
    state: dict[str, TaskRecord] | None, writes: list[dict[str, TaskRecord]]
) -> dict[str, TaskRecord]:
    """``merge_results`` over a batch of writes, as a ``DeltaChannel`` reducer wants it."""
    merged = dict(state or {})
    for write in writes:
        merged = merge_results(merged, write)
    return merged


class OrchestratorInput(TypedDict, total=False):
    """What a run starts from. Setting overrides travel as the run's context, not here."""

    goal: str
    messages: Annotated[list[AnyMessage], add_messages]
    """A chat's messages (Agent Chat UI, Studio, useStream, A2A): the last human message is
    the goal when ``goal`` is not given; earlier ones are context for the planner."""
    options: dict[str, Any]
    """Deprecated: setting overrides given in the input (read only when the run's context
    has none); send them as the run's ``context`` instead."""


class OrchestratorState(TypedDict, total=False):
    """The supervisor's full state."""

    goal: str
    messages: Annotated[list[AnyMessage], add_messages]
    """The chat: the user's goal and, at the end, the final answer as an AI message."""
    conversation: str
    """The chat before the goal's message, as text (context for the planner)."""
    options: dict[str, Any]
    run_settings: dict[str, Any]
    """The setting overrides this thread runs with, stored once from the first run's context
    so that a resume or fork sent without one runs with the same settings."""
    tasks: list[dict[str, Any]]
    """The current plan's tasks (Task dicts)."""
    plan_versions: Annotated[list[PlanVersion], operator.add]
    results: Annotated[dict[str, TaskRecord], DeltaChannel(merge_result_batches)]
    """The blackboard: task id -> record. A delta channel: each checkpoint stores only the
    new writes (and a full snapshot now and then), so checkpoint size per step does not
    grow with the number of results."""
    feedback: str
    """Human or validator feedback for the next planning attempt."""
    plan_approved: bool
    """Whether a human approved (or wrote) the current plan; such a plan of a completed run
    joins the plan library (``graph.planning.planner.learn_from``)."""
    planner_attempts: int
    revisions: int
    rounds: int
    answer: str
    status: RunStatus
    """``planning``/``review``/``running`` while it runs; at the end ``completed`` (every
    task done), ``stopped`` (an answer, but tasks not done: ``stop_reason`` says why) or
    ``failed`` (no task done)."""
    stop_reason: str
    started_at: float
    finished_at: float
    review_since: float
    """When the current plan was put up for review: a human's wait starts there."""
    waited_s: float
    """Seconds the run waited for a human at the plan review; run latency and the
    wall-clock budget leave them out."""
    usage: Annotated[list[TaskMetrics], operator.add]
    """Model usage outside tasks (planning, assessment, synthesis)."""
