"""Where each task of the plan stands: pending, ready to start, or blocked for good."""

from __future__ import annotations

from graph.state import Task, TaskRecord, TaskStatus


def status_of(results: dict[str, TaskRecord], task_id: str) -> TaskStatus:
    """A task's status on the blackboard; absent means pending."""
    return results.get(task_id, {}).get("status", "pending")


def blocked_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> dict[str, TaskRecord]:
    """Pending tasks that can never run because a dependency failed or was skipped."""
    skipped: dict[str, TaskRecord] = {}
    changed = True
    while changed:  # propagate down chains of dependents
        changed = False
        for task in tasks:
            if task.id in skipped or status_of(results, task.id) != "pending":
                continue
            dead = [
                d for d in task.depends_on
                if status_of(results, d) in ("failed", "skipped") or d in skipped
            ]
            if dead:
                skipped[task.id] = TaskRecord(
                    task=task.model_dump(), status="skipped",
                    error=f"dependency {', '.join(dead)} did not complete",
                )
                changed = True
    return skipped


def ready_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> list[Task]:
    """Pending tasks whose dependencies are all done."""
    return [
        t for t in tasks
        if status_of(results, t.id) == "pending"
        and all(status_of(results, d) == "done" for d in t.depends_on)
    ]
