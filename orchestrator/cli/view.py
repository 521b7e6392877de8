"""The live terminal view: the task graph with each task's status, updated as events arrive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STYLE = {"pending": "dim", "running": "yellow", "done": "green", "failed": "red", "skipped": "magenta"}


class TaskBoard:
    """Keeps task statuses from stream events and renders them as a table."""

    def __init__(self, console: Console, live: bool, known: Mapping[str, Any] | None = None) -> None:
        """``known``: the thread's state values so far, when the run resumes a paused or
        earlier run (its plan was streamed before the pause, not again)."""
        self.console = console
        self.tasks: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.models: dict[str, str] = {}
        """The model each task's latest attempt runs on (its tier)."""
        self.notes: list[str] = []
        known = known or {}
        self.tasks = {str(t["id"]): t for t in known.get("tasks") or [] if isinstance(t, dict) and "id" in t}
        for task_id in self.tasks:
            record = (known.get("results") or {}).get(task_id) or {}
            self.status[task_id] = str(record.get("status") or "pending")
            if record.get("model"):
                self.models[task_id] = str(record["model"])
        self._live = Live(self.render(), console=console, refresh_per_second=8, transient=False) if live else None

    def __enter__(self) -> TaskBoard:
        if self._live:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.update(self.render())
            self._live.__exit__(None, None, None)

    def on_event(self, event: dict[str, Any]) -> None:
        """Apply one custom progress event."""
        kind = event.get("event")
        if kind == "plan":
            self.tasks = {t["id"]: t for t in event.get("tasks", [])}
            for task_id in self.tasks:
                self.status.setdefault(task_id, "pending")
            self.note(f"plan v{event.get('version')}: {len(self.tasks)} tasks ({event.get('reason', '')})")
        elif kind == "task_started":
            self.status[event["task_id"]] = "running"
            if event.get("model"):
                self.models[event["task_id"]] = str(event["model"])
        elif kind == "task_finished":
            self.status[event["task_id"]] = event.get("status", "done")
            if event.get("error"):
                self.note(f"{event['task_id']} failed: {event['error']}")
        elif kind in ("escalation", "stopped", "plan_rejected", "revision_rejected"):
            detail = str(event.get("step") or event.get("reason") or event.get("error") or "")
            detail = detail.removeprefix("escalation: ")  # the kind already says it
            self.note(f"{kind}: {event.get('task_id', '')} {detail}".strip())
        elif kind == "synthesizing":
            self.note("synthesizing the answer")
        if self._live:
            self._live.update(self.render())

    def note(self, text: str) -> None:
        self.notes.append(text)
        if not self._live:
            self.console.print(f"[dim]·[/dim] {text}")

    def render(self) -> Group:
        table = Table(title="Task graph", expand=False)
        for column in ("id", "agent", "model", "depends on", "status", "instruction"):
            table.add_column(column)
        for task_id, task in self.tasks.items():
            status = self.status.get(task_id, "pending")
            table.add_row(
                task_id, task.get("agent", ""), self.models.get(task_id, "-"),
                ", ".join(task.get("depends_on", [])) or "-",
                Text(status, style=STYLE.get(status, "")), (task.get("instruction", "")[:60]),
            )
        return Group(table, *[Text(f"· {n}", style="dim") for n in self.notes[-6:]])
