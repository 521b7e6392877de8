"""Rich renderings of a run report and of the cross-run stats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.observability.timeline import auto_width, task_graph_tree, timeline_table

RUN_STYLE = {"completed": "green", "failed": "red", "stopped": "magenta", "interrupted": "yellow",
             "incomplete": "yellow"}


def pct(value: float | None) -> str:
    """A rate as a percentage, or a dash when undefined."""
    return "—" if value is None else f"{value * 100:.1f}%"


def secs(value: float | None) -> str:
    """Seconds, or a dash when unknown."""
    return "—" if value is None else f"{value:.2f}s"


def agents_table(agents: Sequence[Mapping[str, Any]], title: str = "Per agent") -> Table:
    """Cost and latency per agent (models and total time are in --json and --html)."""
    table = Table(title=title)
    table.add_column("agent", overflow="fold", min_width=10)
    for column in ("done", "p50", "p95", "tokens in/out", "cost $", "retries", "cached"):
        table.add_column(column, justify="right")
    for a in agents:
        table.add_row(
            Text(a["agent"]), f"{a['done']}/{a['tasks']}", secs(a["latency_p50_s"]), secs(a["latency_p95_s"]),
            f"{a['tokens_in']}/{a['tokens_out']}", f"{a['cost_usd']:.4f}", str(a["retries"]), str(a["cache_hits"]),
        )
    return table


def render_why(diagnosis: Mapping[str, Any] | None, console: Console) -> None:
    """The diagnosis: the run's failure mode, then each failed or escalated task's, each
    with its evidence and a suggestion (nothing for a run without failures)."""
    if not diagnosis:
        return
    run = diagnosis.get("run")
    for d in [run, *diagnosis.get("tasks", [])]:
        if not d or (d["scope"] == "task" and run and (run["task_id"], run["mode"]) == (d["task_id"], d["mode"])):
            continue  # the run's line already says it (its cause is this task)
        who = "run" if d["scope"] == "run" else f"task {d['task_id']}" + (" (recovered)" if d["recovered"] else "")
        mast = f", {d['mast']}" if d["mast"] else ""
        console.print(
            f"[bold red]Why[/bold red] {escape(who)}: [bold]{escape(d['mode'])}[/bold] ({escape(d['category'])}{escape(mast)})"
            f" — {escape(d['evidence'])} [dim]({escape(d['source'])})[/dim]\n  [cyan]→[/cyan] {escape(d['suggestion'])}",
            highlight=False,
        )


def render_report(report: Mapping[str, Any], console: Console, width: int | None = None) -> None:
    """The run: header, timeline, task graph, per-agent table, failures and the answer.

    ``width`` is the timeline's bar width in columns; by default what the console fits.
    """
    s = report["summary"]
    style = RUN_STYLE.get(report["status"], "white")
    console.rule(f"Run {escape(report['thread_id'])}")
    console.print(f"[bold]Goal:[/bold] {escape(report['goal'])}", highlight=False)
    console.print(
        f"status [{style}]{escape(report['status'])}[/] · tasks {s['tasks_done']}/{s['tasks_total']} done,"
        f" {s['tasks_failed']} failed, {s['tasks_skipped']} skipped · completion {pct(s['completion_rate'])}"
        f" · errors {pct(s['error_rate'])} · verification failures {pct(s['verification_failure_rate'])}"
        f" · cache hits {pct(s['cache_hit_rate'])}",
        highlight=False,
    )
    console.print(
        f"latency per step p50 {secs(s['latency_p50_s'])} · p95 {secs(s['latency_p95_s'])} · wall {secs(s['wall_s'])}"
        f" · tokens {s['tokens']} ({s['tokens_in']} in / {s['tokens_out']} out) · ${s['cost_usd']:.4f}"
        f" · {s['model_calls']} model calls · {s['retries']} retries",
        highlight=False,
    )
    if report.get("stop_reason"):
        console.print(f"[magenta]Stopped early:[/magenta] {escape(report['stop_reason'])}", highlight=False)
    render_why(report.get("diagnosis"), console)
    console.print(timeline_table(report, width or auto_width(console.width)))
    console.print(task_graph_tree(report))
    if report["agents"]:
        console.print(agents_table(report["agents"]))
    for row in report["tasks"]:
        if row["error"]:
            console.print(
                f"[red]{escape(row['id'])}[/red] ({row['status']}): {escape(row['error'])}", highlight=False
            )
        for step in row.get("escalations") or ():
            console.print(f"[yellow]{escape(row['id'])}[/yellow] escalation: {escape(step)}", highlight=False)
    if report.get("answer"):
        console.rule("Answer")
        console.print(report["answer"], markup=False, highlight=False)


def _dist(d: Mapping[str, Any], fmt: str = "{:.2f}") -> list[str]:
    return ["—" if d.get(k) is None else fmt.format(d[k]) for k in ("mean", "p50", "p95", "total")]


def render_stats(stats: Mapping[str, Any], console: Console) -> None:
    """Aggregates across every run in the checkpoint database."""
    console.rule(f"{stats['runs']} runs")
    by_status = ", ".join(f"{k} {v}" for k, v in stats["runs_by_status"].items()) or "none"
    t = stats["tasks"]
    lat = stats["latency_per_step_s"]
    console.print(
        f"runs: {by_status}\n"
        f"tasks {t['done']}/{t['total']} done, {t['failed']} failed, {t['skipped']} skipped · completion"
        f" {pct(stats['completion_rate'])} · error rate {pct(stats['error_rate'])}"
        f" · verification failures {pct(stats['verification']['failure_rate'])}"
        f" ({stats['verification']['failed']}/{stats['verification']['failed'] + stats['verification']['passed']})"
        f" · cache hit rate {pct(stats['cache']['hit_rate'])}\n"
        f"latency per step: p50 {secs(lat['p50'])} · p95 {secs(lat['p95'])} · n={lat['n']}",
        highlight=False,
    )
    per = Table(title="Per workflow")
    per.add_column("")
    for column in ("mean", "p50", "p95", "total"):
        per.add_column(column, justify="right")
    per.add_row("cost $", *_dist(stats["per_workflow"]["cost_usd"], "{:.4f}"))
    per.add_row("tokens", *_dist(stats["per_workflow"]["tokens"], "{:.0f}"))
    per.add_row("wall s", *_dist(stats["per_workflow"]["wall_s"]))
    console.print(per)
    if stats["agents"]:
        console.print(agents_table(stats["agents"], "Per agent (all runs)"))
    modes = stats.get("failure_modes") or {}
    if modes.get("runs") or modes.get("tasks"):
        table = Table(title="Failure modes")
        table.add_column("mode")
        table.add_column("runs", justify="right")
        table.add_column("tasks", justify="right")
        for mode in sorted({*modes.get("runs", {}), *modes.get("tasks", {})},
                           key=lambda m: (-modes.get("runs", {}).get(m, 0), -modes.get("tasks", {}).get(m, 0), m)):
            table.add_row(mode, str(modes.get("runs", {}).get(mode, 0)), str(modes.get("tasks", {}).get(mode, 0)))
        console.print(table)
    if stats.get("trend"):
        by_day = Table(title="By day (UTC)")
        for column in ("day", "runs", "completed", "stopped", "failed", "completion", "errors",
                       "dropped claims", "cost $/workflow"):
            by_day.add_column(column, justify="left" if column == "day" else "right")
        for d in stats["trend"]:
            by_day.add_row(d["day"], str(d["runs"]), str(d["completed"]), str(d["stopped"]), str(d["failed"]),
                           pct(d["completion_rate"]), pct(d["error_rate"]), pct(d["dropped_claim_rate"]),
                           f"{d['cost_per_workflow_usd']:.4f}")
        console.print(by_day)
    runs = Table(title="Runs")
    runs.add_column("thread", overflow="fold", min_width=6)
    runs.add_column("status", min_width=9)
    runs.add_column("goal", overflow="ellipsis", max_width=40)  # wraps on narrow terminals
    for column in ("done", "tokens", "cost $", "wall"):
        runs.add_column(column, justify="right", no_wrap=True)
    runs.add_column("why")
    for r in stats["run_list"]:  # per-run rates and latency percentiles are in --json
        runs.add_row(
            Text(r["thread_id"]), r["status"], Text(r["goal"]), f"{r['tasks_done']}/{r['tasks_total']}",
            str(r["tokens"]), f"{r['cost_usd']:.4f}", secs(r["wall_s"]), r.get("failure_mode") or "",
        )
    console.print(runs)
