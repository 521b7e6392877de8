"""Plan evaluators: structural validity, plausible dependencies, and the example's properties.

Validity reuses the supervisor's own checks (:func:`graph.planning.validate_plan` and
:func:`graph.planning.find_cycle`) with repairs turned into failures: a plan the planner
would have had to repair (unknown agent, dangling or self dependency, duplicate id) is
not a valid plan, even though the run could go on with the repaired one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from core.settings import Limits
from evals.evaluators.base import (
    Score,
    Scores,
    not_applicable,
    plan_tasks,
    run_failed,
    score,
    section,
)
from graph.planning import find_cycle, validate_plan
from graph.state import Task

CONSUMER_AGENTS = ("writer", "reviewer")
"""Agents whose tasks work on other tasks' results (they need a dependency to be useful)."""


def default_agents() -> list[str]:
    """The built-in specialists' names."""
    from agents.registry import AgentRegistry

    return AgentRegistry.builtin().names()


class PlanSpec(BaseModel):
    """What a good plan for one goal must look like (an example's ``plan`` reference)."""

    min_tasks: int = Field(default=1, ge=1)
    max_tasks: int | None = Field(default=None, ge=1)
    required_agents: list[str] = Field(default_factory=list)
    """Agents that must have at least one task."""
    forbidden_agents: list[str] = Field(default_factory=list)
    """Agents that must not appear (e.g. support for a coding goal)."""
    orderings: list[tuple[str, str]] = Field(default_factory=list)
    """``(a, b)``: every task of agent ``b`` depends, directly or not, on a task of ``a``."""
    min_parallel: int = Field(default=1, ge=1)
    """Tasks that can run side by side at one dependency level, at least."""

    def agents_named(self) -> set[str]:
        """Every agent the spec mentions."""
        named = set(self.required_agents) | set(self.forbidden_agents)
        for a, b in self.orderings:
            named |= {a, b}
        return named


# -- graph helpers ---------------------------------------------------------------------


def _tasks(raw: Iterable[Mapping[str, Any]]) -> tuple[list[Task], str | None]:
    tasks = []
    for i, item in enumerate(raw):
        try:
            tasks.append(Task.model_validate(dict(item)))
        except ValidationError as err:
            return [], f"task #{i + 1} is malformed: {err.errors()[0]['msg']}"
    return tasks, None


def ancestors(tasks: Sequence[Task]) -> dict[str, set[str]]:
    """Task id -> ids of every task it depends on, directly or transitively (cycle-safe)."""
    deps = {t.id: [d for d in t.depends_on if d != t.id] for t in tasks}
    out: dict[str, set[str]] = {}
    for start in deps:
        seen: set[str] = set()
        stack = list(deps[start])
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            stack.extend(deps.get(node, []))
        out[start] = seen
    return out


def unreachable(tasks: Sequence[Task]) -> list[str]:
    """Tasks that could never start: a dependency is missing or they sit on a cycle."""
    done: set[str] = set()
    pending = list(tasks)
    progress = True
    while pending and progress:
        progress = False
        for task in list(pending):
            if all(d in done for d in task.depends_on):
                done.add(task.id)
                pending.remove(task)
                progress = True
    return [t.id for t in pending]


def levels(tasks: Sequence[Task]) -> dict[str, int]:
    """Dependency depth of each task (0 = no dependencies); tasks on cycles are left out."""
    by_id = {t.id: t for t in tasks}
    depth: dict[str, int] = {}

    def visit(task_id: str, trail: frozenset[str]) -> int | None:
        if task_id in depth:
            return depth[task_id]
        if task_id in trail:
            return None
        parents = [d for d in by_id[task_id].depends_on if d in by_id]
        below = [visit(d, trail | {task_id}) for d in parents]
        if any(b is None for b in below):
            return None
        depth[task_id] = 1 + max((b for b in below if b is not None), default=-1)
        return depth[task_id]

    for task in tasks:
        visit(task.id, frozenset())
    return depth


def max_parallel(tasks: Sequence[Task]) -> int:
    """The most tasks sharing one dependency level (what can run side by side)."""
    counts: dict[int, int] = {}
    for level in levels(tasks).values():
        counts[level] = counts.get(level, 0) + 1
    return max(counts.values(), default=0)


# -- checks ------------------------------------------------------------------------------


def structural_problems(
    raw: Sequence[Mapping[str, Any]], agents: Sequence[str], max_tasks: int
) -> list[str]:
    """Everything that makes a plan invalid as the planner produced it ([] = valid)."""
    unknown: list[str] = []

    def keep_agent(task: Task) -> str:
        unknown.append(task.agent)
        return task.agent  # record, never repair

    check = validate_plan(
        [dict(t) for t in raw], agents=agents, max_tasks=max_tasks, choose_agent=keep_agent
    )
    if check.error:
        return [check.error]
    problems = [r.split(" replaced by ")[0] for r in check.repairs]
    tasks, error = _tasks(raw)
    if error:
        return [error]
    cycle = find_cycle(tasks)
    if cycle:
        problems.append("dependency cycle " + " -> ".join(cycle))
    stuck = unreachable(tasks)
    if stuck:
        problems.append("tasks that can never start: " + ", ".join(stuck))
    return problems


def dependency_problems(
    tasks: Sequence[Task], consumers: Sequence[str] = CONSUMER_AGENTS
) -> tuple[int, list[str]]:
    """Implausible dependencies, as ``(checks made, problems found)``.

    A consumer task (writer, reviewer) in a multi-task plan must depend on some task, and
    when a plan has consumers, every other task's result must flow into one of them.
    """
    if len(tasks) < 2:
        return 0, []
    up = ancestors(tasks)
    consumer_ids = [t.id for t in tasks if t.agent in consumers]
    checks, problems = 0, []
    for task in tasks:
        if task.agent in consumers:
            checks += 1
            if not [d for d in task.depends_on if d != task.id]:
                problems.append(f"{task.id} ({task.agent}) depends on nothing")
    if consumer_ids:
        for task in tasks:
            if task.agent in consumers:
                continue
            checks += 1
            if not any(task.id in up[c] for c in consumer_ids):
                problems.append(f"{task.id} ({task.agent}) feeds no {'/'.join(consumers)} task")
    return checks, problems


def property_problems(tasks: Sequence[Task], spec: PlanSpec) -> tuple[int, list[str]]:
    """How the plan departs from the example's spec, as ``(checks made, problems found)``."""
    agents = [t.agent for t in tasks]
    problems: list[str] = []
    checks = 1
    if len(tasks) < spec.min_tasks or (spec.max_tasks is not None and len(tasks) > spec.max_tasks):
        bound = f"{spec.min_tasks}..{spec.max_tasks if spec.max_tasks is not None else '∞'}"
        problems.append(f"{len(tasks)} tasks, expected {bound}")
    for agent in spec.required_agents:
        checks += 1
        if agent not in agents:
            problems.append(f"no {agent} task")
    for agent in spec.forbidden_agents:
        checks += 1
        if agent in agents:
            problems.append(f"has a {agent} task")
    up = ancestors(tasks)
    by_id = {t.id: t for t in tasks}
    for first, then in spec.orderings:
        checks += 1
        later = [t for t in tasks if t.agent == then]
        if not later or first not in agents:
            problems.append(f"{first} -> {then}: missing agent")
            continue
        loose = [
            t.id for t in later if not any(by_id[a].agent == first for a in up[t.id] if a in by_id)
        ]
        if loose:
            problems.append(
                f"{first} -> {then}: {', '.join(loose)} does not depend on a {first} task"
            )
    if spec.min_parallel > 1:
        checks += 1
        width = max_parallel(tasks)
        if width < spec.min_parallel:
            problems.append(f"at most {width} tasks in parallel, expected {spec.min_parallel}")
    return checks, problems


# -- evaluators --------------------------------------------------------------------------


def make_plan_validity(agents: Sequence[str] | None = None, max_tasks: int | None = None) -> Any:
    """Evaluator ``plan_validity``: ``plan_valid`` (0/1) and ``plan_dependencies`` (0..1).

    ``plan_valid``: non-empty, at most ``max_tasks`` tasks, known agents, unique ids,
    no dangling or self dependencies, acyclic, every task reachable. ``plan_dependencies``:
    the share of dependency-plausibility checks that pass (see :func:`dependency_problems`).
    """
    known = list(agents) if agents is not None else default_agents()
    limit = max_tasks if max_tasks is not None else Limits().max_tasks

    def plan_validity(outputs: dict[str, Any]) -> Scores:
        failed = run_failed(outputs)
        raw = plan_tasks(outputs)
        if failed or not raw:
            why = failed or "the run produced no plan"
            return Scores(
                results=[score("plan_valid", False, why), score("plan_dependencies", 0.0, why)]
            )
        problems = structural_problems(raw, known, limit)
        tasks, _ = _tasks(raw)
        checks, dep_problems = dependency_problems(tasks)
        dep_score = 1.0 if checks == 0 else 1 - len(dep_problems) / checks
        return Scores(
            results=[
                score(
                    "plan_valid", not problems, "; ".join(problems) or f"{len(raw)} tasks, valid"
                ),
                score(
                    "plan_dependencies", round(dep_score, 4), "; ".join(dep_problems) or "plausible"
                ),
            ]
        )

    return plan_validity


def plan_properties(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
    """Evaluator ``plan_properties``: share of the example's plan properties the plan has."""
    raw_spec = section(reference_outputs, "plan")
    if not raw_spec:
        return not_applicable("plan_properties", "the example states no plan properties")
    spec = PlanSpec.model_validate(raw_spec)
    failed = run_failed(outputs)
    raw = plan_tasks(outputs)
    if failed or not raw:
        return score("plan_properties", 0.0, failed or "the run produced no plan")
    tasks, error = _tasks(raw)
    if error:
        return score("plan_properties", 0.0, error)
    checks, problems = property_problems(tasks, spec)
    return score(
        "plan_properties",
        round(1 - len(problems) / checks, 4),
        "; ".join(problems) or "all properties hold",
    )


def planner_clean(outputs: dict[str, Any]) -> Score:
    """Evaluator ``planner_first_try``: 1 when the first plan was accepted without repairs."""
    if not outputs or "planner_attempts" not in outputs:
        return not_applicable("planner_first_try", "no planner record")
    attempts = int(outputs.get("planner_attempts") or 0)
    reason = str(outputs.get("plan_reason") or "")
    repaired = ";" in reason
    ok = attempts == 1 and not repaired
    why = f"{attempts} attempt(s)" + (f"; {reason}" if repaired else "")
    return score("planner_first_try", ok, why)
