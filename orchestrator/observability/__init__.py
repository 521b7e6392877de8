"""Observability: run reports, cross-run stats, HTML export, secret redaction and tracing hooks.

Everything is derived from checkpointed state (``results[task_id]["metrics"]``, ``usage``,
``started_at``/``finished_at``), so reports need nothing beyond the checkpoint database.
"""

from core.redact import MASK, redact, secret_values
from core.tracing import trace_run, tracing_config, tracing_enabled
from orchestrator.observability.html import render_html
from orchestrator.observability.report import build_report, run_status
from orchestrator.observability.runs import (
    RunView,
    list_threads,
    open_run_reader,
    read_run,
    read_runs,
)
from orchestrator.observability.stats import (
    agent_table,
    aggregate,
    percentile,
    summarize_run,
    task_depths,
    task_rows,
)
from orchestrator.observability.terminal import render_report, render_stats

__all__ = [
    "MASK",
    "RunView",
    "agent_table",
    "aggregate",
    "build_report",
    "list_threads",
    "open_run_reader",
    "percentile",
    "read_run",
    "read_runs",
    "redact",
    "render_html",
    "render_report",
    "render_stats",
    "run_status",
    "secret_values",
    "summarize_run",
    "task_depths",
    "task_rows",
    "trace_run",
    "tracing_config",
    "tracing_enabled",
]
