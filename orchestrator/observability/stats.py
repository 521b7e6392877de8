"""Metrics derived from checkpointed state: per task, per run, per agent and across runs.

Nothing here is stored; everything is recomputed from ``OrchestratorState`` values, so a
report always agrees with the checkpoint it was read from. Rates whose denominator is zero
are ``None`` (JSON ``null``): "no data" is not the same as 0 %.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from core.usage import run_metrics
from graph.synthesis import final_status
from orchestrator.observability.diagnosis import RunDiagnosis, diagnose

VERIFY_PASSED = "verification passed"
VERIFY_FAILED = "verification failed"
"""Prefixes of TaskRecord history entries; failed verifications are our hallucination proxy."""


class TaskRow(TypedDict):
    """One task as reports show it: plan fields, outcome and metrics, times relative to the run."""

    id: str
    agent: str
    status: str
    instruction: str
    depends_on: list[str]
    depth: int
    in_plan: bool
    ran: bool
    model: str
    started_at: float | None
    ended_at: float | None
    start_s: float | None
    end_s: float | None
    latency_s: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    retries: int
    attempts: int
    cache_hit: bool
    error: str
    verifications_passed: int
    verifications_failed: int
    escalations: list[str]
    """The task's escalation steps, in order (a stronger model, another agent, a human)."""


class RunSummary(TypedDict):
    """One run's metrics."""

    thread_id: str
    goal: str
    status: str
    started_at: float | None
    plan_versions: int
    tasks_total: int
    tasks_done: int
    tasks_failed: int
    tasks_skipped: int
    completion_rate: float | None
    error_rate: float | None
    verifications_passed: int
    verifications_failed: int
    verification_failure_rate: float | None
    cache_hits: int
    cache_hit_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    wall_s: float | None
    """Start to the last recorded moment (finish or last task end); None if neither is known."""
    span_s: float
    peak_parallelism: int
    tokens_in: int
    tokens_out: int
    tokens: int
    cost_usd: float
    model_calls: int
    retries: int
    failure_mode: str
    """The run's failure mode (``orchestrator.observability.diagnosis``); "" when it has none."""
    task_failure_modes: list[str]
    """The modes of its failed or escalated tasks, in plan order."""


class AgentRow(TypedDict):
    """Per-agent totals over a set of tasks."""

    agent: str
    models: list[str]
    tasks: int
    done: int
    failed: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_total_s: float
    tokens_in: int
    tokens_out: int
    cost_usd: float
    retries: int
    cache_hits: int
    verifications_failed: int


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 6)


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return round(part / whole, 6) if whole else None


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, total, mean, p50, p95 and max of a sample."""
    return {
        "n": len(values),
        "total": round(sum(values), 8),
        "mean": round(sum(values) / len(values), 8) if values else None,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


def task_depths(tasks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Dependency depth of each task: 0 without dependencies, else 1 + its deepest dependency."""
    deps = {str(t["id"]): [str(d) for d in t.get("depends_on") or []] for t in tasks}
    depth: dict[str, int] = {}

    def visit(task_id: str, path: frozenset[str]) -> int:
        if task_id in depth:
            return depth[task_id]
        parents = [d for d in deps.get(task_id, []) if d in deps and d not in path]  # cycle guard
        depth[task_id] = 1 + max((visit(d, path | {task_id}) for d in parents), default=-1)
        return depth[task_id]

    for task_id in deps:
        visit(task_id, frozenset())
    return depth


def _plan_tasks(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Current plan tasks, then tasks that ran under an earlier plan version."""
    results: Mapping[str, Any] = values.get("results") or {}
    tasks = [dict(t) for t in values.get("tasks") or []]
    known = {t["id"] for t in tasks}
    for task_id, record in results.items():
        if task_id not in known:
            tasks.append({"id": task_id, **(record.get("task") or {}), "_stale": True})
    return tasks


def run_origin(values: Mapping[str, Any]) -> float | None:
    """Time zero of a run's timeline: its start, else its first task's start."""
    if values.get("started_at") is not None:
        return float(values["started_at"])
    starts = [
        float(r["metrics"]["started_at"])
        for r in (values.get("results") or {}).values()
        if (r.get("metrics") or {}).get("started_at")
    ]
    return min(starts) if starts else None


def task_rows(values: Mapping[str, Any]) -> list[TaskRow]:
    """Every task of a run with its outcome and metrics, in plan order."""
    results: Mapping[str, Any] = values.get("results") or {}
    tasks = _plan_tasks(values)
    depths = task_depths(tasks)
    origin = run_origin(values)
    rows: list[TaskRow] = []
    for task in tasks:
        record = results.get(task["id"]) or {}
        ran_as = record.get("task") or {}
        metrics = record.get("metrics") or {}
        started = metrics.get("started_at")
        ended = metrics.get("ended_at")
        latency = metrics.get("latency_s")
        if latency is None and started is not None and ended is not None:
            latency = round(ended - started, 6)
        history = [str(h) for h in record.get("history") or []]
        rows.append(
            TaskRow(
                id=str(task["id"]),
                agent=str(ran_as.get("agent") or task.get("agent") or "?"),
                status=str(record.get("status") or "pending"),
                instruction=str(task.get("instruction") or ""),
                depends_on=[str(d) for d in task.get("depends_on") or []],
                depth=depths.get(str(task["id"]), 0),
                in_plan=not task.get("_stale"),
                ran=bool(metrics),
                model=str(metrics.get("model") or ""),
                started_at=started,
                ended_at=ended,
                start_s=round(started - origin, 6) if started is not None and origin is not None else None,
                end_s=round(ended - origin, 6) if ended is not None and origin is not None else None,
                latency_s=latency,
                tokens_in=int(metrics.get("tokens_in", 0)),
                tokens_out=int(metrics.get("tokens_out", 0)),
                cost_usd=float(metrics.get("cost_usd", 0.0)),
                retries=int(metrics.get("retries", 0)),
                attempts=int(record.get("attempts", 0)),
                cache_hit=bool(metrics.get("cache_hit", False)),
                error=str(record.get("error") or ""),
                verifications_passed=sum(h.startswith(VERIFY_PASSED) for h in history),
                verifications_failed=sum(h.startswith(VERIFY_FAILED) for h in history),
                escalations=[h.removeprefix("escalation: ") for h in history if h.startswith("escalation: ")],
            )
        )
    return rows


def peak_parallelism(rows: Sequence[TaskRow]) -> int:
    """Most tasks running at the same moment (a task ending as another starts does not overlap)."""
    events: list[tuple[float, int]] = []
    for row in rows:
        if row["started_at"] is not None and row["ended_at"] is not None:
            events += [(row["started_at"], 1), (row["ended_at"], -1)]
    peak = running = 0
    for _, delta in sorted(events):  # at equal times -1 sorts first: ends before starts
        running += delta
        peak = max(peak, running)
    return peak


def run_span(values: Mapping[str, Any], rows: Sequence[TaskRow]) -> float:
    """Seconds from the run's origin to its last recorded moment (the timeline's width)."""
    ends = [r["end_s"] for r in rows if r["end_s"] is not None]
    origin = run_origin(values)
    if values.get("finished_at") and origin is not None:
        ends.append(round(float(values["finished_at"]) - origin, 6))
    return max(ends, default=0.0)


def _wall(values: Mapping[str, Any], rows: Sequence[TaskRow]) -> float | None:
    # Unlike run_metrics, never measure up to "now": a run that died without finishing
    # would otherwise grow older every time it is reported.
    known = values.get("finished_at") or max((r["ended_at"] for r in rows if r["ended_at"]), default=None)
    origin = run_origin(values)
    return round(float(known) - origin, 6) if known and origin is not None else None


def _counts(rows: Sequence[TaskRow]) -> dict[str, int]:
    statuses = [r["status"] for r in rows]
    return {
        "total": len(rows),
        "done": statuses.count("done"),
        "failed": statuses.count("failed"),
        "skipped": statuses.count("skipped"),
        "ran": sum(r["ran"] for r in rows),
        "cache_hits": sum(r["cache_hit"] for r in rows),
        "verified_ok": sum(r["verifications_passed"] for r in rows),
        "verified_bad": sum(r["verifications_failed"] for r in rows),
    }


def run_status(values: Mapping[str, Any], next_nodes: Sequence[str] = (), interrupts: Sequence[Any] = ()) -> str:
    """The run's status as the CLI's ``show`` reports it.

    ``interrupted``: paused for a human. ``incomplete``: steps remain (still running, the
    process died, or an unreplayed fork); ``resume`` continues it. Otherwise, for a run
    that ended with an answer, ``completed`` (every task done) or ``stopped`` (tasks not
    done: ``graph.synthesis.final_status``), else ``failed`` (it ended without a result).
    """
    if interrupts:
        return "interrupted"
    if next_nodes:
        return "incomplete"
    if values.get("status") in ("completed", "stopped"):
        return final_status(values)[0]
    return "failed"


def summarize_run(
    values: Mapping[str, Any], thread_id: str = "", status: str | None = None,
    rows: Sequence[TaskRow] | None = None,
) -> RunSummary:
    """One run's metrics from its state values."""
    rows = task_rows(values) if rows is None else rows
    c = _counts(rows)
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    totals = run_metrics(values)
    status = status or run_status(values)
    why: RunDiagnosis = diagnose(values, status)
    return RunSummary(
        thread_id=thread_id,
        goal=str(values.get("goal") or ""),
        status=status,
        started_at=run_origin(values),
        plan_versions=len(values.get("plan_versions") or []),
        tasks_total=c["total"],
        tasks_done=c["done"],
        tasks_failed=c["failed"],
        tasks_skipped=c["skipped"],
        completion_rate=rate(c["done"], c["total"]),
        error_rate=rate(c["failed"], c["done"] + c["failed"]),
        verifications_passed=c["verified_ok"],
        verifications_failed=c["verified_bad"],
        verification_failure_rate=rate(c["verified_bad"], c["verified_ok"] + c["verified_bad"]),
        cache_hits=c["cache_hits"],
        cache_hit_rate=rate(c["cache_hits"], c["ran"]),
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        wall_s=_wall(values, rows),
        span_s=run_span(values, rows),
        peak_parallelism=peak_parallelism(rows),
        tokens_in=totals["tokens_in"],
        tokens_out=totals["tokens_out"],
        tokens=totals["tokens"],
        cost_usd=totals["cost_usd"],
        model_calls=totals["model_calls"],
        retries=totals["retries"],
        failure_mode=why["run"]["mode"] if why["run"] else "",
        task_failure_modes=[d["mode"] for d in why["tasks"]],
    )


def agent_table(rows: Sequence[TaskRow]) -> list[AgentRow]:
    """Per-agent cost and latency over tasks that ran, sorted by agent name."""
    by_agent: dict[str, list[TaskRow]] = {}
    for row in rows:
        if row["ran"] or row["status"] in ("done", "failed"):
            by_agent.setdefault(row["agent"], []).append(row)
    table: list[AgentRow] = []
    for agent in sorted(by_agent):
        group = by_agent[agent]
        latencies = [r["latency_s"] for r in group if r["latency_s"] is not None]
        table.append(
            AgentRow(
                agent=agent,
                models=sorted({r["model"] for r in group if r["model"]}),
                tasks=len(group),
                done=sum(r["status"] == "done" for r in group),
                failed=sum(r["status"] == "failed" for r in group),
                latency_p50_s=percentile(latencies, 50),
                latency_p95_s=percentile(latencies, 95),
                latency_total_s=round(sum(latencies), 6),
                tokens_in=sum(r["tokens_in"] for r in group),
                tokens_out=sum(r["tokens_out"] for r in group),
                cost_usd=round(sum(r["cost_usd"] for r in group), 8),
                retries=sum(r["retries"] for r in group),
                cache_hits=sum(r["cache_hit"] for r in group),
                verifications_failed=sum(r["verifications_failed"] for r in group),
            )
        )
    return table


def day_of(started_at: float | None) -> str:
    """The UTC day a run started on (YYYY-MM-DD), "unknown" when it has no start time."""
    return time.strftime("%Y-%m-%d", time.gmtime(started_at)) if started_at else "unknown"


def trend(runs: Sequence[tuple[RunSummary, Sequence[TaskRow]]]) -> list[dict[str, Any]]:
    """The promised metrics per day, oldest first: runs by status, task completion rate,
    task error rate, dropped-claim rate (checks that failed a result: verification
    failures over verifications, the hallucination proxy) and cost per workflow (mean
    cost of a run that day)."""
    days: dict[str, list[tuple[RunSummary, Sequence[TaskRow]]]] = {}
    for run in runs:
        days.setdefault(day_of(run[0]["started_at"]), []).append(run)
    table = []
    for day in sorted(days):
        summaries = [s for s, _ in days[day]]
        c = _counts([row for _, rows in days[day] for row in rows])
        costs = [s["cost_usd"] for s in summaries]
        table.append({
            "day": day,
            "runs": len(summaries),
            "completed": sum(s["status"] == "completed" for s in summaries),
            "stopped": sum(s["status"] == "stopped" for s in summaries),
            "failed": sum(s["status"] == "failed" for s in summaries),
            "completion_rate": rate(c["done"], c["total"]),
            "error_rate": rate(c["failed"], c["done"] + c["failed"]),
            "dropped_claim_rate": rate(c["verified_bad"], c["verified_ok"] + c["verified_bad"]),
            "cost_per_workflow_usd": round(sum(costs) / len(costs), 8),
            "cost_usd": round(sum(costs), 8),
        })
    return table


def failure_modes(summaries: Sequence[RunSummary]) -> dict[str, dict[str, int]]:
    """Failure modes with counts over runs (the run's own) and over their tasks."""
    return {
        "runs": _count([s["failure_mode"] for s in summaries if s["failure_mode"]]),
        "tasks": _count([m for s in summaries for m in s["task_failure_modes"]]),
    }


def _count(modes: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in modes:
        counts[m] = counts.get(m, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def aggregate(runs: Sequence[tuple[RunSummary, Sequence[TaskRow]]]) -> dict[str, Any]:
    """Metrics across runs: pooled task rates, per-step latency percentiles, per-workflow cost,
    failure modes with counts and the promised metrics by day."""
    rows = [row for _, run_rows in runs for row in run_rows]
    summaries = [summary for summary, _ in runs]
    c = _counts(rows)
    by_status: dict[str, int] = {}
    for s in summaries:
        by_status[s["status"]] = by_status.get(s["status"], 0) + 1
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    return {
        "runs": len(summaries),
        "runs_by_status": dict(sorted(by_status.items())),
        "tasks": {k: c[k] for k in ("total", "done", "failed", "skipped")},
        "completion_rate": rate(c["done"], c["total"]),
        "error_rate": rate(c["failed"], c["done"] + c["failed"]),
        "verification": {
            "passed": c["verified_ok"],
            "failed": c["verified_bad"],
            "failure_rate": rate(c["verified_bad"], c["verified_ok"] + c["verified_bad"]),
        },
        "cache": {"hits": c["cache_hits"], "tasks_run": c["ran"], "hit_rate": rate(c["cache_hits"], c["ran"])},
        "latency_per_step_s": distribution(latencies),
        "per_workflow": {
            "cost_usd": distribution([s["cost_usd"] for s in summaries]),
            "tokens": distribution([s["tokens"] for s in summaries]),
            "wall_s": distribution([s["wall_s"] for s in summaries if s["wall_s"] is not None]),
        },
        "totals": {
            "cost_usd": round(sum(s["cost_usd"] for s in summaries), 8),
            "tokens_in": sum(s["tokens_in"] for s in summaries),
            "tokens_out": sum(s["tokens_out"] for s in summaries),
            "tokens": sum(s["tokens"] for s in summaries),
        },
        "agents": agent_table(rows),
        "failure_modes": failure_modes(summaries),
        "trend": trend(runs),
        "run_list": summaries,
    }
