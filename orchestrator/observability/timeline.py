"""Terminal views of one run: a Gantt timeline (parallel tasks overlap) and the task graph."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

STATUS_STYLE = {
    "done": "green",
    "failed": "red",
    "skipped": "bright_black",
    "running": "yellow",
    "pending": "bright_black",
}
BAR, GAP = "█", "·"


def bar_span(start: float, end: float, span: float, width: int) -> tuple[int, int]:
    """Columns [first, last) a task occupies on a ``width``-column axis of ``span`` seconds.

    Every task gets at least one column, so even instant tasks stay visible.
    """
    if span <= 0 or width <= 0:
        return (0, min(1, width))
    scale = width / span
    first = min(width - 1, max(0, math.floor(round(start * scale, 6))))
    last = min(width, max(first + 1, round(round(end * scale, 6))))
    return (first, last)


def timed(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows that have a start and an end, ordered by start time then id."""
    have = [r for r in rows if r.get("start_s") is not None and r.get("end_s") is not None]
    return sorted(have, key=lambda r: (r["start_s"], r["end_s"], r["id"]))


def concurrency_profile(rows: Sequence[Mapping[str, Any]], span: float, width: int) -> list[int]:
    """How many task bars cover each column: the parallelism the timeline shows."""
    profile = [0] * width
    for row in timed(rows):
        first, last = bar_span(row["start_s"], row["end_s"], span, width)
        for col in range(first, last):
            profile[col] += 1
    return profile


def gantt_bar(row: Mapping[str, Any], span: float, width: int) -> Text:
    """One task's bar: its columns filled, the rest dotted."""
    if row.get("start_s") is None or row.get("end_s") is None:
        return Text(GAP * width, style="bright_black")
    first, last = bar_span(row["start_s"], row["end_s"], span, width)
    bar = Text(GAP * first, style="bright_black")
    bar.append(BAR * (last - first), style=STATUS_STYLE.get(str(row.get("status")), "white"))
    bar.append(GAP * (width - last), style="bright_black")
    return bar


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"


def auto_width(console_width: int) -> int:
    """Bar columns that fit next to the other timeline columns."""
    return max(16, min(100, console_width - 62))


def _axis(span: float, width: int) -> str:
    end = f"{span:.1f}s"
    return "0s" + " " * (width - 2 - len(end)) + end if width >= len(end) + 4 else "time"


def timeline_table(report: Mapping[str, Any], width: int = 48) -> Table:
    """The run as a Gantt chart: one row per task, columns are time, overlaps are parallelism."""
    span = float(report["summary"]["span_s"] or 0.0)
    table = Table(title=f"Timeline · 0 → {span:.2f}s · peak parallelism {report['summary']['peak_parallelism']}")
    table.add_column("task", overflow="fold", max_width=16)
    table.add_column("agent", overflow="fold", max_width=12)
    table.add_column("status", no_wrap=True)
    table.add_column(_axis(span, width), no_wrap=True, min_width=width)
    table.add_column("start", justify="right", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    rows: list[Mapping[str, Any]] = list(timed(report["tasks"]))
    rows += [r for r in report["tasks"] if r not in rows]
    for row in rows:
        table.add_row(
            Text(row["id"]), Text(row["agent"]), Text(row["status"], style=STATUS_STYLE.get(row["status"], "")),
            gantt_bar(row, span, width), _seconds(row.get("start_s")), _seconds(row.get("latency_s")),
        )
    profile = concurrency_profile(report["tasks"], span, width)
    table.add_section()
    table.add_row("", "", Text("parallel", style="bold"),
                  Text("".join(str(n) if 0 < n < 10 else ("+" if n else GAP) for n in profile)), "", "")
    return table


def task_graph_tree(report: Mapping[str, Any]) -> Tree:
    """The task graph by dependency depth: each level lists its tasks and what they wait on."""
    tree = Tree("Task graph")
    rows = report["tasks"]
    for depth in sorted({r["depth"] for r in rows}):
        level = tree.add(f"[bold]depth {depth}[/bold]")
        for row in (r for r in rows if r["depth"] == depth):
            label = Text(row["id"], style=f"bold {STATUS_STYLE.get(row['status'], '')}")
            label.append(f" {row['agent']} · {row['status']}", style=STATUS_STYLE.get(row["status"], ""))
            if row["depends_on"]:
                label.append(f"  ← {', '.join(row['depends_on'])}", style="cyan")
            if not row.get("in_plan", True):
                label.append("  (earlier plan version)", style="bright_black")
            level.add(label)
    return tree
