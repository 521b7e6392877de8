"""Run-level metrics derived from the checkpointed state (never stored twice)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypedDict


class RunMetrics(TypedDict):
    """Totals for one run."""

    tasks_total: int
    tasks_completed: int
    tasks_failed: int
    tasks_skipped: int
    tokens_in: int
    tokens_out: int
    tokens: int
    cost_usd: float
    model_calls: int
    cache_hits: int
    retries: int
    latency_s: float


def run_metrics(state: Mapping[str, Any], now: float | None = None) -> RunMetrics:
    """Sum task and supervisor usage; latency is wall time from start to the last task end."""
    results: Mapping[str, Any] = state.get("results") or {}
    task_metrics = [r.get("metrics") or {} for r in results.values()]
    overhead = list(state.get("usage") or [])
    every = task_metrics + overhead
    statuses = [r.get("status") for r in results.values()]
    started = state.get("started_at")
    ends = [m["ended_at"] for m in task_metrics if m.get("ended_at")]
    if state.get("finished_at"):
        ends.append(state["finished_at"])
    end = max(ends) if ends else (now or time.time())
    tokens_in = sum(int(m.get("tokens_in", 0)) for m in every)
    tokens_out = sum(int(m.get("tokens_out", 0)) for m in every)
    return RunMetrics(
        tasks_total=len(state.get("tasks") or []),
        tasks_completed=statuses.count("done"),
        tasks_failed=statuses.count("failed"),
        tasks_skipped=statuses.count("skipped"),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens=tokens_in + tokens_out,
        cost_usd=round(sum(float(m.get("cost_usd", 0.0)) for m in every), 8),
        model_calls=sum(int(m.get("model_calls", 0)) for m in every),
        cache_hits=sum(1 for m in task_metrics if m.get("cache_hit")),
        retries=sum(int(m.get("retries", 0)) for m in task_metrics),
        latency_s=round(end - started, 6) if started else 0.0,
    )
