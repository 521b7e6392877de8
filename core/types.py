"""Types every layer shares: a task, a plan (the task DAG), a task's record (its metrics are
``core.usage.TaskMetrics``).

State values are plain JSON-compatible dicts so checkpoints, the LangGraph server and SDK
clients all see the same thing; the pydantic models below validate them at the boundaries.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field

from core.usage import TaskMetrics

TaskStatus = Literal["pending", "running", "done", "failed", "skipped"]
RunStatus = Literal["planning", "review", "running", "completed", "failed", "interrupted"]


class Task(BaseModel):
    """One node of the task graph."""

    id: str = Field(description="Short unique id, e.g. 't1'.")
    agent: str = Field(description="Name of the specialist agent that performs the task.")
    instruction: str = Field(description="What the agent must do, self-contained.")
    acceptance_criteria: str = Field(
        default="", description="What a correct result must contain; used for verification."
    )
    depends_on: list[str] = Field(
        default_factory=list, description="Ids of tasks whose results this task needs."
    )


class Plan(BaseModel):
    """A task graph: tasks and their dependencies."""

    tasks: list[Task] = Field(description="The tasks, each with its dependencies.")
    rationale: str = Field(default="", description="One sentence on why this decomposition.")


class TaskRecord(TypedDict, total=False):
    """A blackboard entry: the task as run, its outcome and what it cost."""

    task: dict[str, Any]
    status: TaskStatus
    output: str
    citations: list[str]
    artifacts: list[str]
    error: str | None
    attempts: int
    history: list[str]
    """Escalation and verification steps, in order; a write appends its entries."""
    feedback: str
    """Guidance for the next attempt (the previous error, a reviewer's or a human's note)."""
    failed_agents: list[str]
    """Agents that already failed this task; reassignment avoids them."""
    settled: bool
    """A failure that escalation has finished with: it stays failed."""
    model: str
    """The model the task's next attempts run on, set by escalation's stronger-model step
    (``Settings.tiers``); absent = the model of its agent's role."""
    metrics: TaskMetrics


PlannedBy = Literal["judged", "model", "human", "fallback"]
"""Who made a plan version: ``judged`` — the model judged which specialists the goal needs
(guided by the plan library) and code composed the tasks; ``model`` — the model wrote the
task graph; ``human`` — a person edited it; ``fallback`` — one task, after the planner failed."""


class PlanVersion(TypedDict):
    """One revision of the plan, kept so revisions are visible in state."""

    version: int
    """1 for the first plan, +1 per revision."""
    reason: str
    """Why this version exists (how it was made, what was repaired), for people."""
    tasks: list[dict[str, Any]]
    """The plan's tasks (Task dicts)."""
    planned_by: NotRequired[PlannedBy]
    """Who made it (absent in threads saved before it was recorded)."""
