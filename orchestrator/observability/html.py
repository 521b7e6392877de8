"""A self-contained HTML page for one run: task graph and timeline as inline SVG, tables, answer.

No scripts, stylesheets, fonts or images are loaded from anywhere: the page is one file that
opens offline. Every value from the run is HTML-escaped; callers redact secrets first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from core.text import truncate
from orchestrator.observability.timeline import timed

COLORS = {  # status -> (stroke/bar, fill)
    "done": ("#2e7d32", "#e8f5e9"),
    "failed": ("#c62828", "#ffebee"),
    "stopped": ("#c2410c", "#fff7ed"),
    "skipped": ("#757575", "#f5f5f5"),
    "running": ("#f9a825", "#fffde7"),
    "pending": ("#9e9e9e", "#fafafa"),
}
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 160, 46, 56, 18, 16
LABEL_W, PLOT_W, ROW_H, AXIS_H = 180, 640, 24, 26

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #e0e0e0}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #e0e0e0;padding:4px 8px}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #e0e0e0;border-radius:6px;padding:6px 10px}
.card b{display:block;font-size:1.1em}.answer{white-space:pre-wrap;background:#fafafa;border:1px solid #e0e0e0;padding:12px}
svg text{font-family:inherit}.status-done{color:#2e7d32}.status-failed{color:#c62828}
.scroll{overflow-x:auto}
"""


def _color(status: str) -> tuple[str, str]:
    return COLORS.get(status, COLORS["pending"])


def _num(value: float) -> str:
    """Compact SVG coordinate."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def dag_layout(tasks: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Top-left corner of each task's node: columns by dependency depth, rows in plan order."""
    rows_in_layer: dict[int, int] = {}
    positions: dict[str, tuple[float, float]] = {}
    for task in tasks:
        depth = int(task["depth"])
        index = rows_in_layer.get(depth, 0)
        rows_in_layer[depth] = index + 1
        positions[task["id"]] = (PAD + depth * (NODE_W + GAP_X), PAD + index * (NODE_H + GAP_Y))
    return positions


def dag_svg(report: Mapping[str, Any]) -> str:
    """The task DAG: one node per task colored by status, one arrow per dependency."""
    tasks = report["tasks"]
    pos = dag_layout(tasks)
    width = max((x for x, _ in pos.values()), default=PAD) + NODE_W + PAD
    height = max((y for _, y in pos.values()), default=PAD) + NODE_H + PAD
    parts = [
        f'<svg id="task-graph" role="img" aria-label="task graph" width="{_num(width)}" '
        f'height="{_num(height)}" viewBox="0 0 {_num(width)} {_num(height)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#607d8b"/>'
        "</marker></defs>",
    ]
    for source, target in report["edges"]:
        (sx, sy), (tx, ty) = pos[source], pos[target]
        x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H / 2, tx, ty + NODE_H / 2
        mid = (x1 + x2) / 2
        parts.append(
            f'<path class="edge" data-from="{escape(source)}" data-to="{escape(target)}" '
            f'd="M{_num(x1)} {_num(y1)}C{_num(mid)} {_num(y1)} {_num(mid)} {_num(y2)} {_num(x2 - 2)} {_num(y2)}" '
            'fill="none" stroke="#607d8b" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
    for task in tasks:
        x, y = pos[task["id"]]
        stroke, fill = _color(task["status"])
        dash = "" if task.get("in_plan", True) else ' stroke-dasharray="4 3"'  # from an earlier plan
        tip = f"{task['id']} · {task['agent']} · {task['status']}\n{task['instruction']}"
        if task["error"]:
            tip += f"\nerror: {task['error']}"
        parts.append(
            f'<g class="node status-{escape(task["status"])}" data-task="{escape(task["id"])}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{_num(x + 10)}" y="{_num(y + 19)}" font-weight="bold" font-size="13">'
            f"{escape(task['id'])}</text>"
            f'<text x="{_num(x + 10)}" y="{_num(y + 36)}" font-size="11" fill="#424242">'
            f"{escape(_clip(task['agent'] + ' · ' + task['status'], 24))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, limit: int) -> str:
    return truncate(text, limit, mark="…")


def nice_step(span: float, max_ticks: int = 8) -> float:
    """A 1/2/5×10^k tick interval giving at most ``max_ticks`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max_ticks
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def bar_geometry(start: float, end: float, span: float, plot_w: float = PLOT_W) -> tuple[float, float]:
    """x and width of a task's bar inside the plot area (at least 2 px, so instant tasks show)."""
    if span <= 0:
        return (float(LABEL_W), 2.0)
    return (round(LABEL_W + start / span * plot_w, 2), round(max(2.0, (end - start) / span * plot_w), 2))


def timeline_svg(report: Mapping[str, Any]) -> str:
    """The Gantt chart: one row per task on a shared time axis; overlapping bars ran in parallel."""
    span = float(report["summary"]["span_s"] or 0.0)
    ran = timed(report["tasks"])
    rows = list(ran) + [t for t in report["tasks"] if t not in ran]
    width, height = LABEL_W + PLOT_W + PAD, AXIS_H + len(rows) * ROW_H + PAD
    parts = [
        f'<svg id="timeline" role="img" aria-label="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    step = nice_step(span)
    for i in range(int(span / step + 1e-9) + 1 if span > 0 else 1):
        x = LABEL_W + (i * step / span * PLOT_W if span > 0 else 0)
        parts.append(
            f'<line x1="{_num(x)}" y1="{AXIS_H - 6}" x2="{_num(x)}" y2="{height - PAD}" stroke="#eeeeee"/>'
            f'<text x="{_num(x)}" y="{AXIS_H - 10}" font-size="10" text-anchor="middle" fill="#757575">'
            f"{_num(i * step)}s</text>"
        )
    for index, task in enumerate(rows):
        y = AXIS_H + index * ROW_H
        stroke, _ = _color(task["status"])
        parts.append(
            f'<g class="row" data-task="{escape(task["id"])}"><text x="4" y="{y + 16}" font-size="12">'
            f"{escape(_clip(task['id'] + ' · ' + task['agent'], 26))}</text>"
        )
        if task.get("start_s") is not None and task.get("end_s") is not None:
            x, w = bar_geometry(task["start_s"], task["end_s"], span)
            tip = (f"{task['id']} · {task['agent']} · {task['status']}: {task['start_s']:.3f}s → "
                   f"{task['end_s']:.3f}s ({task['latency_s'] or 0:.3f}s)")
            parts.append(
                f'<rect class="bar" x="{_num(x)}" y="{y + 4}" width="{_num(w)}" height="{ROW_H - 8}" '
                f'rx="3" fill="{stroke}" data-start="{task["start_s"]}" data-end="{task["end_s"]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        else:
            parts.append(
                f'<text x="{LABEL_W + 4}" y="{y + 16}" font-size="11" fill="#9e9e9e">'
                f"{escape(task['status'])} (not run)</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td{" class=n" if i >= numeric_from else ""}>{escape(str(cell))}</td>' for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def agents_html(agents: Sequence[Mapping[str, Any]]) -> str:
    """Per-agent cost and latency."""
    return _table(
        ("agent", "models", "tasks", "done", "failed", "latency p50", "latency p95", "total time",
         "tokens in", "tokens out", "cost $", "retries", "cache hits"),
        [(a["agent"], ", ".join(a["models"]) or "—", a["tasks"], a["done"], a["failed"],
          _secs(a["latency_p50_s"]), _secs(a["latency_p95_s"]), _secs(a["latency_total_s"]),
          a["tokens_in"], a["tokens_out"], f"{a['cost_usd']:.4f}", a["retries"], a["cache_hits"])
         for a in agents],
        numeric_from=2,
    )


def tasks_html(tasks: Sequence[Mapping[str, Any]]) -> str:
    """Every task with its metrics and error."""
    return _table(
        ("task", "agent", "status", "model", "error", "start", "latency", "tokens in", "tokens out",
         "cost $", "retries", "cache hit", "verification"),
        [(t["id"], t["agent"], t["status"], t["model"] or "—", t["error"] or "", _secs(t["start_s"]),
          _secs(t["latency_s"]), t["tokens_in"], t["tokens_out"], f"{t['cost_usd']:.4f}", t["retries"],
          "yes" if t["cache_hit"] else "no",
          f"{t['verifications_passed']} passed / {t['verifications_failed']} failed")
         for t in tasks],
        numeric_from=5,
    )


def why_html(diagnosis: Mapping[str, Any] | None) -> str:
    """The diagnosis: the run's failure mode, then each failed or escalated task's, with the
    evidence each was read from and what to change ("" when there is nothing to say)."""
    if not diagnosis or not (diagnosis.get("run") or diagnosis.get("tasks")):
        return ""
    rows = [d for d in [diagnosis.get("run"), *diagnosis.get("tasks", [])] if d]
    return "<h2>Why</h2>" + _table(
        ("scope", "mode", "category", "evidence", "source", "suggestion"),
        [("run" if d["scope"] == "run" else f"task {d['task_id']}" + (" (recovered)" if d["recovered"] else ""),
          d["mode"], d["category"] + (f" · {d['mast']}" if d["mast"] else ""), d["evidence"], d["source"],
          d["suggestion"]) for d in rows],
        numeric_from=99,
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page."""
    s = report["summary"]
    cards = [
        ("status", report["status"]), ("tasks done", f"{s['tasks_done']}/{s['tasks_total']}"),
        ("completion", _pct(s["completion_rate"])), ("error rate", _pct(s["error_rate"])),
        ("verification failures", _pct(s["verification_failure_rate"])),
        ("cache hit rate", _pct(s["cache_hit_rate"])), ("latency p50", _secs(s["latency_p50_s"])),
        ("latency p95", _secs(s["latency_p95_s"])), ("wall time", _secs(s["wall_s"])),
        ("peak parallelism", s["peak_parallelism"]), ("tokens", s["tokens"]),
        ("cost", f"${s['cost_usd']:.4f}"),
    ]
    stop = f"<p><b>Stopped early:</b> {escape(report['stop_reason'])}</p>" if report.get("stop_reason") else ""
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Run {escape(report['thread_id'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Run {escape(report['thread_id'])}</h1>",
        f"<p><b>Goal:</b> {escape(report['goal'])}</p>{stop}",
        '<div class="cards">',
        *(f'<div class="card">{escape(k)}<b>{escape(str(v))}</b></div>' for k, v in cards),
        "</div>",
        why_html(report.get("diagnosis")),
        '<h2>Task graph</h2><div class="scroll">', dag_svg(report), "</div>",
        '<h2>Timeline</h2><div class="scroll">', timeline_svg(report), "</div>",
        "<h2>Per agent</h2>", agents_html(report["agents"]),
        "<h2>Tasks</h2>", tasks_html(report["tasks"]),
        '<h2>Answer</h2><pre class="answer">', escape(report["answer"] or "(no answer)"), "</pre>",
        "</body></html>\n",
    ])
