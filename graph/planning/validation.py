"""Plan schema for the planner model, and validation that repairs or rejects a plan.

A plan is repaired where the fix is unambiguous (an unknown agent, a dangling or self
dependency, a duplicate id) and rejected with a message for the planner where it is not
(empty, too large, cyclic). Validation never raises for bad model output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from graph.state import Plan, Task


def plan_schema(agent_names: Sequence[str]) -> type[BaseModel]:
    """A Plan schema whose ``agent`` field only admits registered agents (one class per
    agent set, built once)."""
    return _plan_schema(tuple(agent_names))


@lru_cache(maxsize=64)
def _plan_schema(agent_names: tuple[str, ...]) -> type[BaseModel]:
    """See ``plan_schema``.

    The enum reaches the model as part of the tool schema, so constrained decoders (the
    llama.cpp server turns schemas into grammars) cannot name an unknown agent at all.
    """
    agent_type: Any = Literal[tuple(agent_names)] if agent_names else str
    planned_task = create_model(
        "PlannedTask",
        __base__=Task,
        agent=(agent_type, Field(description="The specialist that performs the task.")),
    )
    return create_model(
        "Plan",
        __base__=Plan,
        tasks=(list[planned_task], Field(description="The tasks, each with its dependencies.")),  # type: ignore[valid-type]
    )


@dataclass
class PlanCheck:
    """Outcome of validating a plan."""

    tasks: list[Task] = field(default_factory=list)
    """The repaired tasks (meaningful when ``error`` is None)."""
    repairs: list[str] = field(default_factory=list)
    """What was changed, for the plan version's reason and the logs."""
    error: str | None = None
    """Why the plan is unusable; sent back to the planner."""


def find_cycle(tasks: Sequence[Task]) -> list[str] | None:
    """Return one dependency cycle as a list of ids, or None if the graph is acyclic."""
    deps = {t.id: [d for d in t.depends_on] for t in tasks}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in deps and state.get(dep) is None and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for task_id in deps:
        if state.get(task_id) is None and (cycle := visit(task_id)):
            return cycle
    return None


def validate_plan(
    raw_tasks: Iterable[Task | dict[str, Any]],
    *,
    agents: Sequence[str],
    max_tasks: int,
    choose_agent: Callable[[Task], str],
    done_ids: Iterable[str] = (),
) -> PlanCheck:
    """Check a plan and repair what can be repaired.

    ``choose_agent`` maps a task with an unknown agent to a capable registered one.
    ``done_ids`` are completed tasks that new tasks may depend on (plan revisions).
    """
    check = PlanCheck()
    tasks: list[Task] = []
    for i, raw in enumerate(raw_tasks):
        try:
            tasks.append(raw if isinstance(raw, Task) else Task.model_validate(raw))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return PlanCheck(error=f"task #{i + 1} is malformed: {where}: {first['msg']}")
    if not tasks:
        return PlanCheck(error="the plan has no tasks; give at least one task")
    if len(tasks) > max_tasks:
        return PlanCheck(
            error=f"the plan has {len(tasks)} tasks; at most {max_tasks} are allowed — merge tasks"
        )

    seen: set[str] = set(done_ids)
    known_agents = set(agents)
    for task in tasks:
        if not task.instruction.strip():
            return PlanCheck(error=f"task {task.id!r} has an empty instruction")
        if not task.id.strip() or task.id in seen:
            new_id = _fresh_id(seen)
            check.repairs.append(f"duplicate or empty id {task.id!r} renamed to {new_id!r}")
            task = task.model_copy(update={"id": new_id})
        if task.agent not in known_agents:
            agent = choose_agent(task)
            check.repairs.append(f"task {task.id}: unknown agent {task.agent!r} replaced by {agent!r}")
            task = task.model_copy(update={"agent": agent})
        seen.add(task.id)
        check.tasks.append(task)

    all_ids = {t.id for t in check.tasks} | set(done_ids)
    # Small models often name the agent of the task they mean ("depends_on": ["researcher"]).
    by_agent: dict[str, list[str]] = {}
    for task in check.tasks:
        by_agent.setdefault(task.agent, []).append(task.id)
    fixed: list[Task] = []
    for task in check.tasks:
        deps: list[str] = []
        for dep in task.depends_on:
            meant = by_agent.get(dep, [])
            if dep not in all_ids and len(meant) == 1 and meant[0] != task.id:
                check.repairs.append(f"task {task.id}: dependency on agent {dep!r} read as task {meant[0]!r}")
                dep = meant[0]
            if dep == task.id:
                check.repairs.append(f"task {task.id}: dropped dependency on itself")
            elif dep not in all_ids:
                check.repairs.append(f"task {task.id}: dropped unknown dependency {dep!r}")
            elif dep not in deps:
                deps.append(dep)
        fixed.append(task.model_copy(update={"depends_on": deps}))
    check.tasks = fixed

    cycle = find_cycle(check.tasks)
    if cycle:
        return PlanCheck(
            error="the dependencies form a cycle: " + " -> ".join(cycle) + "; remove one of them"
        )
    return check


def _fresh_id(taken: set[str]) -> str:
    n = len(taken) + 1
    while f"t{n}" in taken:
        n += 1
    return f"t{n}"
