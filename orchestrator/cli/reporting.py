"""``orchestrator report THREAD`` and ``orchestrator stats``: read runs back from checkpoints.

Wiring (orchestrator/cli/__init__.py): ``add_parsers(sub)`` in ``_parser()``, and at the top
of ``_dispatch``: ``if (code := await reporting.dispatch(args, settings)) is not None: return code``.
Everything printed or written is redacted with the settings' secrets first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from core.redact import redact, secret_values, secrets_in_mapping
from core.settings import Settings

COMMANDS = ("report", "stats")


def add_parsers(subparsers: Any) -> None:
    """Add the ``report`` and ``stats`` subcommands to the CLI's subparsers."""
    report = subparsers.add_parser(
        "report", help="one run as a timeline (parallel tasks overlap) and its task graph"
    )
    report.add_argument("thread")
    report.add_argument("--json", action="store_true", help="print the report as one JSON object")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    report.add_argument("--width", type=int, help="timeline width in columns (default: fit the terminal)")

    stats = subparsers.add_parser("stats", help="metrics across every run in the checkpoint database")
    stats.add_argument("--json", action="store_true", help="print the stats as one JSON object")
    stats.add_argument("--last", type=int, metavar="N", help="only the N most recent runs")


def _usage_error(message: str) -> Exception:
    from orchestrator.cli.commands import UsageError

    return UsageError(message)


def _secrets(settings: Settings, values: dict[str, Any] | None = None) -> list[str]:
    # A run's own overrides may name models with keys: mask those too.
    return secret_values(settings, extra=secrets_in_mapping((values or {}).get("options") or {}))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str, ensure_ascii=False)


async def cmd_report(settings: Settings, thread_id: str, as_json: bool, html_file: str | None,
                     width: int | None = None, console: Console | None = None) -> int:
    """Show one run; ``--html`` writes the page, ``--json`` prints the data."""
    from orchestrator.observability.html import render_html
    from orchestrator.observability.report import build_report
    from orchestrator.observability.runs import open_run_reader, read_run
    from orchestrator.observability.terminal import render_report

    async with open_run_reader(settings) as (graph, _):
        view = await read_run(graph, thread_id)
    if view is None:
        raise _usage_error(f"no thread {thread_id!r} in {settings.checkpoint_uri or settings.data_dir}")
    secrets = _secrets(settings, view.values)
    report = redact(
        build_report(view.thread_id, view.values, next_nodes=view.next_nodes, interrupts=view.interrupts),
        secrets,
    )
    console = console or Console()
    if html_file:
        path = Path(html_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(redact(render_html(report), secrets), encoding="utf-8")
        except OSError as exc:
            raise _usage_error(f"cannot write {html_file}: {exc}") from None
    if as_json:
        print(redact(_dumps(report), secrets))
        return 0
    render_report(report, console, width=width)
    if html_file:
        console.print(f"[dim]HTML report written to {path}[/dim]", highlight=False)
    return 0


async def cmd_stats(settings: Settings, as_json: bool, last: int | None = None,
                    console: Console | None = None) -> int:
    """Aggregate every run in the checkpoint database."""
    from orchestrator.observability.report import run_status
    from orchestrator.observability.runs import open_run_reader, read_runs
    from orchestrator.observability.stats import aggregate, summarize_run, task_rows
    from orchestrator.observability.terminal import render_stats

    async with open_run_reader(settings) as (graph, saver):
        views = await read_runs(graph, saver, limit=last)
    runs = []
    secrets = secret_values(settings)
    for view in views:
        rows = task_rows(view.values)
        status = run_status(view.values, view.next_nodes, view.interrupts)
        runs.append((summarize_run(view.values, view.thread_id, status, rows), rows))
        secrets += _secrets(settings, view.values)
    stats = redact(aggregate(runs), secrets)
    if as_json:
        print(redact(_dumps(stats), secrets))
        return 0
    render_stats(stats, console or Console())
    return 0


async def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run ``report`` or ``stats``; None when the command is someone else's."""
    command = getattr(args, "command", None)
    if command == "report":
        if args.width is not None and args.width < 10:
            raise _usage_error("--width must be at least 10")
        return await cmd_report(settings, args.thread, args.json, args.html, args.width)
    if command == "stats":
        if args.last is not None and args.last <= 0:
            raise _usage_error("--last must be a positive number")
        return await cmd_stats(settings, args.json, args.last)
    return None
