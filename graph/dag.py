"""Where each task of the plan stands: pending, ready to start, or blocked for good.

Policy for a failed dependency. A task whose dependency failed for good (escalation settled
it) still runs when that dependency left something usable — text it produced or files it
wrote, e.g. code whose tests failed: the dependent gets that work marked as partial
(graph/context.py) and says so, and the answer shows it. A dependency that failed with
nothing usable, or was skipped, blocks its dependents: a task does not run on nothing.
A failure escalation has not finished with blocks nothing yet and starts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from graph.state import Task, TaskRecord, TaskStatus


def status_of(results: Mapping[str, TaskRecord], task_id: str) -> TaskStatus:
    """A task's status on the blackboard; absent means pending."""
    return results.get(task_id, {}).get("status", "pending")


def is_partial(record: TaskRecord) -> bool:
    """Whether ``record`` is a failure escalation has settled that left usable work: output
    text or files written."""
    return (
        record.get("status") == "failed"
        and bool(record.get("settled"))
        and (bool(str(record.get("output") or "").strip()) or bool(record.get("artifacts")))
    )


def usable(results: Mapping[str, TaskRecord], task_id: str) -> bool:
    """Whether a dependent may build on ``task_id``: it is done, or failed with partial work."""
    record = results.get(task_id, {})
    return record.get("status") == "done" or is_partial(record)


def partial_ids(results: Mapping[str, TaskRecord]) -> frozenset[str]:
    """The tasks whose partial work their dependents may use."""
    return frozenset(k for k, r in results.items() if is_partial(r))


def blocked_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> dict[str, TaskRecord]:
    """Pending tasks that can never run: a dependency was skipped, or failed leaving nothing
    usable (a dependency with partial work does not block; see the module docstring)."""
    skipped: dict[str, TaskRecord] = {}
    changed = True
    while changed:  # propagate down chains of dependents
        changed = False
        for task in tasks:
            if task.id in skipped or status_of(results, task.id) != "pending":
                continue
            dead = [
                d for d in task.depends_on
                if d in skipped or status_of(results, d) == "skipped"
                or (status_of(results, d) == "failed" and not is_partial(results[d]))
            ]
            if dead:
                skipped[task.id] = TaskRecord(
                    task=task.model_dump(), status="skipped",
                    error=f"dependency {', '.join(dead)} did not complete and left nothing usable",
                )
                changed = True
    return skipped


def ready_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> list[Task]:
    """Pending tasks whose dependencies are all done or left partial work."""
    return [
        t for t in tasks
        if status_of(results, t.id) == "pending" and all(usable(results, d) for d in t.depends_on)
    ]
