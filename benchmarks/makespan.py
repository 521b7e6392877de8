"""Parallel makespan: DAGs of known shape with a fixed latency per model call.

Shapes: 8 wide, a chain 8 deep, a diamond 1→6→1, and "skewed": a chain of 4 beside one task
4× as slow. The lower bound is the critical path (the longest latency-weighted path; depth ×
latency for uniform tasks), or the total work over ``MAX_CONCURRENCY`` when that is longer
(it is not for these shapes: none is wider than 8); makespan / bound = 1.0 is ideal. The
makespan is the whole ``ainvoke``, fixed steps included (intake, plan, synthesis and their
checkpoints); for ours the table also gives the tasks' span (first task started to last
task finished), which leaves those out. Two latency modes:

- ``tasks``: only the workers' calls take ``--latency`` (supervisor calls are instant), so
  the bound is exact and the ratio is pure scheduling;
- ``all``: every model call takes ``--latency``, so the ratio also counts the supervisor's
  own calls (ours: plan and synthesis; the baseline: one call per handoff plus its answer).

Both systems checkpoint to SQLite, on a new file per run opened as the product opens it
(``graph.persistence.open_sqlite``: tables created and WAL set before the clock starts,
``synchronous=NORMAL``), so the makespan is the run's, not the database's creation. Also
probes the baseline's parallel handoffs (the supervisor asking for every task of a DAG level
in one message) and records how many tasks really ran. Results go to ``results/makespan.json`` (0.2 s) or ``results/makespan-<L>s.json``.

    .venv/bin/python -m benchmarks.makespan [--latency 0.2] [--repeats 3] [--modes tasks all]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Outcome,
    Task,
    chain,
    diamond,
    levels,
    makespan_bound,
    median,
    print_table,
    run_baseline,
    run_ours,
    task,
    task_span,
    wide,
    write_results,
)
from graph.persistence import open_sqlite

SHAPES: dict[str, Callable[[], list[Task]]] = {
    "wide 8": lambda: wide(8), "chain 8": lambda: chain(8), "diamond 1-6-1": lambda: diamond(6),
    "skewed": lambda: [*chain(4), task("slow")],
}
SLOW = {"slow": 4.0}
MAX_CONCURRENCY = 8
"""Ours runs at most this many tasks at once (``limits.max_concurrency``); the baseline one."""
"""Latency multipliers: in "skewed", one task takes as long as the 4-task chain beside it."""


async def once(system: str, tasks: list[Task], latency: float, mode: str) -> Outcome:
    kw: dict[str, Any] = {"worker_latency_s": latency, "supervisor_latency_s": latency if mode == "all" else 0.0,
                          "task_latency": {tid: latency * k for tid, k in SLOW.items()}}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_sqlite(Path(tmp) / "cp.sqlite") as cp:
            if system == "ours":
                return await run_ours(tasks, Path(tmp), checkpointer=cp, max_concurrency=MAX_CONCURRENCY, **kw)
            return await run_baseline(tasks, checkpointer=cp, parallel=system == "baseline-parallel", **kw)


async def main(latency: float, repeats: int, modes: list[str]) -> None:
    await once("ours", wide(2), 0.0, "tasks")  # warm up
    await once("baseline", wide(2), 0.0, "tasks")
    rows: list[dict[str, Any]] = []
    for mode in modes:
        for shape, make in SHAPES.items():
            tasks = make()
            depth = len(levels(tasks))
            bound = makespan_bound(tasks, lambda tid: latency * SLOW.get(tid, 1.0), MAX_CONCURRENCY)
            for system in ("ours", "baseline", "baseline-parallel"):
                runs = [await once(system, tasks, latency, mode) for _ in range(repeats)]
                makespan = median([r.wall_s for r in runs])
                spans = [s for r in runs if (s := task_span(r.detail.get("state", {}))) is not None]
                span = median(spans) if system == "ours" and spans else None
                rows.append({"mode": mode, "shape": shape, "system": system, "tasks": len(tasks),
                             "depth": depth, "bound_s": bound, "makespan_s": makespan,
                             "ratio": makespan / bound, "span_s": span,
                             "span_ratio": span / bound if span is not None else None, "model_calls": runs[0].model_calls,
                             "tasks_run": runs[0].detail.get("tasks_run", runs[0].detail.get("done")),
                             "all_ok": all(r.ok for r in runs), "walls": [r.wall_s for r in runs]})
    print_table(
        ["latency on", "shape", "system", "tasks run", "model calls", "bound s", "makespan s",
         "makespan / bound", "tasks' span s", "span / bound"],
        [[r["mode"], r["shape"], r["system"], f"{r['tasks_run']}/{r['tasks']}", r["model_calls"],
          r["bound_s"], r["makespan_s"], r["ratio"] if r["all_ok"] else "n/a (tasks dropped)",
          "–" if r["span_s"] is None else r["span_s"], "–" if r["span_ratio"] is None else r["span_ratio"]]
         for r in rows],
    )
    name = "makespan" if latency == 0.2 else f"makespan-{latency:g}s"
    path = write_results(name, {"latency_s": latency, "repeats": repeats, "max_concurrency": MAX_CONCURRENCY,
                                "checkpointer": "sqlite", "modes": modes, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per model call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("tasks", "all"), default=["tasks", "all"],
                        help="which calls take the latency (see above)")
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.repeats, args.modes))
