"""One run's report: a JSON-compatible dict every renderer (terminal, JSON, HTML) reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graph.synthesis import final_status
from orchestrator.observability.diagnosis import diagnose
from orchestrator.observability.stats import agent_table, run_status, summarize_run, task_rows

__all__ = ["build_report", "run_status"]  # run_status lives with the metrics


def _interrupt_kind(interrupt: Any) -> str:
    value = getattr(interrupt, "value", interrupt)
    return str(value.get("type", "interrupt")) if isinstance(value, Mapping) else "interrupt"


def build_report(
    thread_id: str,
    values: Mapping[str, Any],
    *,
    next_nodes: Sequence[str] = (),
    interrupts: Sequence[Any] = (),
) -> dict[str, Any]:
    """Everything ``orchestrator report`` shows about one run (not yet redacted)."""
    rows = task_rows(values)
    status = run_status(values, next_nodes, interrupts)
    ids = {r["id"] for r in rows}
    overhead = list(values.get("usage") or [])
    return {
        "thread_id": thread_id,
        "goal": str(values.get("goal") or ""),
        "status": status,
        "stop_reason": final_status(values)[1] if status == "stopped" else str(values.get("stop_reason") or ""),
        "answer": str(values.get("answer") or ""),
        "diagnosis": diagnose(values, status),
        "summary": summarize_run(values, thread_id, status, rows),
        "tasks": rows,
        "edges": [[d, r["id"]] for r in rows for d in r["depends_on"] if d in ids],
        "agents": agent_table(rows),
        "overhead": {
            "model_calls": sum(int(u.get("model_calls", 0)) for u in overhead),
            "tokens_in": sum(int(u.get("tokens_in", 0)) for u in overhead),
            "tokens_out": sum(int(u.get("tokens_out", 0)) for u in overhead),
            "cost_usd": round(sum(float(u.get("cost_usd", 0.0)) for u in overhead), 8),
        },
        "plan_versions": [
            {"version": v.get("version"), "reason": v.get("reason", ""), "tasks": len(v.get("tasks") or [])}
            for v in values.get("plan_versions") or []
        ],
        "next": list(next_nodes),
        "interrupts": [_interrupt_kind(i) for i in interrupts],
    }
