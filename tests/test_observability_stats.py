"""Exact metrics, Gantt positions and HTML structure from a hand-built run state."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from orchestrator.observability.html import (
    GAP_X,
    LABEL_W,
    NODE_W,
    PAD,
    bar_geometry,
    nice_step,
    render_html,
)
from orchestrator.observability.report import build_report, run_status
from orchestrator.observability.stats import (
    agent_table,
    aggregate,
    peak_parallelism,
    percentile,
    rate,
    summarize_run,
    task_depths,
    task_rows,
)
from orchestrator.observability.terminal import render_report, render_stats
from orchestrator.observability.timeline import (
    BAR,
    GAP,
    bar_span,
    concurrency_profile,
    timeline_table,
)
from tests.html_text import parse_svgs

T0 = 1_000.0


def _task(tid: str, agent: str, deps: list[str] | None = None) -> dict[str, Any]:
    return {"id": tid, "agent": agent, "instruction": f"do {tid}", "acceptance_criteria": "",
            "depends_on": deps or []}


def _record(tid: str, agent: str, status: str, start: float | None = None, end: float | None = None,
            tokens: tuple[int, int] = (0, 0), cost: float = 0.0, history: list[str] | None = None,
            error: str | None = None, cache_hit: bool = False, retries: int = 0,
            deps: list[str] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"task": _task(tid, agent, deps), "status": status, "output": f"out {tid}",
                              "error": error, "attempts": 1, "history": history or []}
    if start is not None and end is not None:
        record["metrics"] = {"model": "test", "started_at": T0 + start, "ended_at": T0 + end,
                             "latency_s": end - start, "tokens_in": tokens[0], "tokens_out": tokens[1],
                             "cost_usd": cost, "retries": retries, "cache_hit": cache_hit, "model_calls": 1}
    return record


def sample_state() -> dict[str, Any]:
    """t1 ∥ t2 -> t3 -> t4 (fails) -> t5 (skipped); starts at T0, finishes at T0+10."""
    tasks = [_task("t1", "researcher"), _task("t2", "coder"), _task("t3", "writer", ["t1", "t2"]),
             _task("t4", "analyst", ["t3"]), _task("t5", "reviewer", ["t4"])]
    return {
        "goal": "Compare <b>A</b> & B",
        "tasks": tasks,
        "results": {
            "t1": _record("t1", "researcher", "done", 0.5, 2.5, (100, 20), 0.01, ["verification passed"]),
            "t2": _record("t2", "coder", "done", 1.0, 4.0, (200, 40), 0.02, retries=1),
            "t3": _record("t3", "writer", "done", 4.0, 5.0, (50, 10), 0.005,
                          ["verification failed: missing X", "verification passed"], cache_hit=True,
                          deps=["t1", "t2"]),
            "t4": _record("t4", "analyst", "failed", 5.0, 9.0, (300, 0), 0.03,
                          ["verification failed: made up"], error="boom", deps=["t3"]),
            "t5": {"task": _task("t5", "reviewer", ["t4"]), "status": "skipped",
                   "error": "dependency t4 did not complete"},
        },
        "usage": [{"tokens_in": 1000, "tokens_out": 100, "cost_usd": 0.1, "model_calls": 2}],
        "plan_versions": [{"version": 1, "reason": "initial", "tasks": tasks}],
        "status": "completed",
        "answer": "Final <script>alert('x')</script> answer & more",
        "started_at": T0,
        "finished_at": T0 + 10.0,
    }


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 3.85
    assert percentile([1.0, 2.0, 3.0, 4.0, 10.0], 95) == 8.8
    assert rate(1, 0) is None and rate(1, 4) == 0.25


def test_task_depths_follow_longest_dependency_chain_and_survive_cycles() -> None:
    assert task_depths(sample_state()["tasks"]) == {"t1": 0, "t2": 0, "t3": 1, "t4": 2, "t5": 3}
    cyclic = [{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["zz"]}]
    depths = task_depths(cyclic)
    assert set(depths) == {"a", "b", "c"} and depths["c"] == 0


def test_task_rows_carry_metrics_relative_to_run_start() -> None:
    rows = {r["id"]: r for r in task_rows(sample_state())}
    assert rows["t2"]["start_s"] == 1.0 and rows["t2"]["end_s"] == 4.0 and rows["t2"]["latency_s"] == 3.0
    assert rows["t3"]["verifications_failed"] == 1 and rows["t3"]["verifications_passed"] == 1
    assert rows["t3"]["cache_hit"] and rows["t3"]["depth"] == 1
    assert rows["t5"]["ran"] is False and rows["t5"]["start_s"] is None and rows["t5"]["status"] == "skipped"
    assert rows["t4"]["error"] == "boom"


def test_run_summary_rates_and_totals_are_exact() -> None:
    s = summarize_run(sample_state(), "th1")
    assert (s["tasks_total"], s["tasks_done"], s["tasks_failed"], s["tasks_skipped"]) == (5, 3, 1, 1)
    assert s["completion_rate"] == 0.6
    assert s["error_rate"] == 0.25
    assert (s["verifications_passed"], s["verifications_failed"]) == (2, 2)
    assert s["verification_failure_rate"] == 0.5
    assert s["cache_hit_rate"] == 0.25
    assert s["latency_p50_s"] == 2.5 and s["latency_p95_s"] == 3.85
    assert s["peak_parallelism"] == 2
    assert s["span_s"] == 10.0 and s["wall_s"] == 10.0
    assert (s["tokens_in"], s["tokens_out"], s["tokens"]) == (1650, 170, 1820)
    assert s["cost_usd"] == pytest.approx(0.165)
    assert s["model_calls"] == 6 and s["retries"] == 1


def test_peak_parallelism_does_not_count_back_to_back_tasks() -> None:
    rows = task_rows(sample_state())
    assert peak_parallelism([r for r in rows if r["id"] in ("t2", "t3")]) == 1
    assert peak_parallelism(rows) == 2


def test_agent_table_sums_per_agent() -> None:
    table = {a["agent"]: a for a in agent_table(task_rows(sample_state()))}
    assert set(table) == {"researcher", "coder", "writer", "analyst"}  # skipped t5 never ran
    assert table["analyst"]["failed"] == 1 and table["analyst"]["tokens_in"] == 300
    assert table["coder"]["latency_p50_s"] == 3.0 and table["coder"]["retries"] == 1
    assert table["writer"]["cache_hits"] == 1 and table["writer"]["models"] == ["test"]


def test_aggregate_pools_tasks_across_runs() -> None:
    first = sample_state()
    second = {
        "goal": "g2", "tasks": [_task("a1", "researcher")], "status": "failed",
        "results": {"a1": _record("a1", "researcher", "done", 0.0, 10.0, (10, 5), 0.5)},
        "started_at": T0, "finished_at": T0 + 12.0,
    }
    runs = []
    for tid, values in (("r1", first), ("r2", second)):
        rows = task_rows(values)
        runs.append((summarize_run(values, tid, rows=rows), rows))
    stats = aggregate(runs)
    # r1 was saved as "completed" with t4 failed and t5 skipped: it reads as stopped.
    assert stats["runs"] == 2 and stats["runs_by_status"] == {"stopped": 1, "failed": 1}
    assert stats["tasks"] == {"total": 6, "done": 4, "failed": 1, "skipped": 1}
    assert stats["completion_rate"] == round(4 / 6, 6)
    assert stats["error_rate"] == 0.2
    assert stats["verification"] == {"passed": 2, "failed": 2, "failure_rate": 0.5}
    assert stats["cache"] == {"hits": 1, "tasks_run": 5, "hit_rate": 0.2}
    lat = stats["latency_per_step_s"]
    assert (lat["n"], lat["p50"], lat["p95"], lat["max"]) == (5, 3.0, 8.8, 10.0)
    cost = stats["per_workflow"]["cost_usd"]
    assert cost["total"] == pytest.approx(0.665) and cost["mean"] == pytest.approx(0.3325)
    assert stats["per_workflow"]["tokens"]["p50"] == (1820 + 15) / 2
    assert stats["per_workflow"]["wall_s"]["p95"] == pytest.approx(10 + 0.95 * 2)
    assert [r["thread_id"] for r in stats["run_list"]] == ["r1", "r2"]


def test_empty_database_aggregates_to_undefined_rates() -> None:
    stats = aggregate([])
    assert stats["runs"] == 0 and stats["completion_rate"] is None
    assert stats["latency_per_step_s"]["p50"] is None
    console = Console(record=True, width=160, file=io.StringIO())
    render_stats(stats, console)
    assert "0 runs" in console.export_text()


def test_run_status_matches_the_cli_show_command() -> None:
    assert run_status({"status": "running"}, interrupts=[object()]) == "interrupted"
    assert run_status({"status": "completed"}, next_nodes=["dispatch"]) == "incomplete"
    assert run_status({"status": "completed"}) == "completed"
    assert run_status(sample_state()) == "stopped"  # saved as completed, with tasks not done
    assert run_status({"status": "running"}) == "failed"  # ended without completing
    assert run_status({}) == "failed"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0.5, 2.5, (1, 5)), (1.0, 4.0, (2, 8)), (4.0, 5.0, (8, 10)), (5.0, 9.0, (10, 18)),
     (9.99, 10.0, (19, 20)), (3.0, 3.0, (6, 7)), (0.0, 10.0, (0, 20))],
)
def test_bar_span_maps_seconds_to_columns(start: float, end: float, expected: tuple[int, int]) -> None:
    assert bar_span(start, end, 10.0, 20) == expected


def test_concurrency_profile_shows_parallel_columns() -> None:
    report = build_report("th1", sample_state())
    profile = concurrency_profile(report["tasks"], 10.0, 20)
    assert profile == [0, 1, 2, 2, 2, 1, 1, 1, 1, 1] + [1] * 8 + [0, 0]


def test_terminal_timeline_draws_overlapping_bars() -> None:
    report = build_report("th1", sample_state())
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(timeline_table(report, width=20))
    lines = console.export_text().splitlines()

    def bar_of(task_id: str) -> str:
        line = next(x for x in lines if f" {task_id} " in x)
        return next(part.strip() for part in line.split("│") if BAR in part or part.strip() == GAP * 20)

    assert bar_of("t1") == GAP * 1 + BAR * 4 + GAP * 15
    assert bar_of("t2") == GAP * 2 + BAR * 6 + GAP * 12
    assert bar_of("t4") == GAP * 10 + BAR * 8 + GAP * 2
    assert bar_of("t5") == GAP * 20  # skipped: never ran
    assert any("peak parallelism 2" in x for x in lines)
    assert any(GAP + "1222" + "1" * 13 + GAP * 2 in x for x in lines)  # two tasks overlap in cols 2-4


def test_render_report_text_shows_metrics_graph_and_answer() -> None:
    report = build_report("th1", sample_state())
    console = Console(record=True, width=220, file=io.StringIO())
    render_report(report, console, width=20)
    text = console.export_text()
    for needle in ("Run th1", "completion 60.0%", "errors 25.0%", "verification failures 50.0%",
                   "cache hits 25.0%", "p50 2.50s", "p95 3.85s", "Task graph", "depth 3", "t3 writer",
                   "← t1, t2", "Per agent", "boom", "Final <script>", "Compare <b>A</b> & B"):
        assert needle in text, needle


def test_html_page_is_self_contained_with_graph_timeline_and_escaped_answer() -> None:
    report = build_report("th1", sample_state())
    page = render_html(report)
    parser = parse_svgs(page)
    parser.close()
    graph_text = parser.svg_text("task-graph")
    timeline_text = parser.svg_text("timeline")
    for task_id in ("t1", "t2", "t3", "t4", "t5"):
        assert task_id in graph_text.split() or f"{task_id} ·" in graph_text
        assert f"{task_id} ·" in timeline_text
    # Self-contained: no script, stylesheet link, image or external reference.
    assert not {"script", "link", "img", "iframe", "object"} & set(parser.tags)
    assert all(name not in ("src", "href") for name, _ in parser.attrs)
    assert "http://" not in page and "https://" not in page
    # The answer and goal are escaped, not live markup.
    assert "Final <script>alert('x')</script> answer & more" in "".join(parser.pre)
    assert "&lt;script&gt;" in page and "Compare &lt;b&gt;A&lt;/b&gt; &amp; B" in page
    # One arrow per dependency; nodes placed by depth; bars placed on the time axis.
    graph = parser.elements["task-graph"]
    edges = [(a["data-from"], a["data-to"]) for tag, a in graph if tag == "path" and a.get("class") == "edge"]
    assert sorted(edges) == [("t1", "t3"), ("t2", "t3"), ("t3", "t4"), ("t4", "t5")]
    rects = [a for tag, a in graph if tag == "rect"]
    assert [float(a["x"] or 0) for a in rects] == [PAD, PAD, PAD + (NODE_W + GAP_X), PAD + 2 * (NODE_W + GAP_X),
                                                    PAD + 3 * (NODE_W + GAP_X)]
    assert [a["stroke"] for a in rects] == ["#2e7d32"] * 3 + ["#c62828", "#757575"]
    bars = {a["data-start"]: a for tag, a in parser.elements["timeline"] if tag == "rect"}
    assert float(bars["1.0"]["x"] or 0) == LABEL_W + 64 and float(bars["1.0"]["width"] or 0) == 192
    assert len(bars) == 4  # the skipped task has a row but no bar
    assert bar_geometry(2.0, 2.0, 10.0) == (LABEL_W + 128, 2.0)


def test_nice_step_picks_round_tick_intervals() -> None:
    assert nice_step(10.0) == 2.0
    assert nice_step(0.3) == pytest.approx(0.05)
    assert nice_step(75.0) == 10.0
    assert nice_step(0.0) == 1.0


def test_report_of_an_empty_plan_renders_everywhere() -> None:
    report = build_report("empty", {"goal": "g", "status": "planning", "started_at": T0})
    assert report["tasks"] == [] and report["summary"]["completion_rate"] is None
    assert report["summary"]["wall_s"] is None  # never "until now": the run may be long dead
    page = render_html(report)
    assert 'id="task-graph"' in page and 'id="timeline"' in page
    console = Console(record=True, width=160, file=io.StringIO())
    render_report(report, console)
    assert "Run empty" in console.export_text()
