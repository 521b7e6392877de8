"""Throughput of the supervisor on Aegra: the same batch of runs on 1 and on 2 instances.

Each configuration gets a fresh database and Redis prefix (``tests/aegra_harness.py``), its
instances (one uvicorn process, one worker loop, ``--jobs`` concurrent runs each), and a batch
of ``--runs`` threads submitted at once through the instances' APIs in turn; the clock runs
from the first submission until every run has succeeded. A run is the 4-task ``fanout`` plan
(3 parallel tasks, then one that needs them) with the scripted test model at ``--latency``
seconds per model call, so it measures orchestration and Aegra, not a language model.

    .venv/bin/python -m benchmarks.scale_out [--runs 40] [--latency 0.2] [--jobs 10] [--repeats 2]

Needs PostgreSQL and Redis on 127.0.0.1 and ``.venv-aegra`` (make aegra-venv).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import print_table, write_results
from tests.aegra_harness import Cluster, context, unavailable


async def batch(cluster: Cluster, names: list[str], runs: int) -> float:
    """Submit ``runs`` runs across the named instances at once; seconds until all succeeded."""
    from langgraph_sdk import get_client

    clients = [get_client(url=cluster.instances[n].url, timeout=300.0) for n in names]

    async def submit(i: int) -> tuple[Any, str, str]:
        api = clients[i % len(clients)]
        thread = await api.threads.create()
        run = await api.runs.create(thread["thread_id"], "orchestrator", context=context(),
                                    input={"goal": f"Part {i} [[goal:g{i}]] [[plan:fanout]]"})
        return api, thread["thread_id"], run["run_id"]

    started = time.monotonic()
    submitted = await asyncio.gather(*(submit(i) for i in range(runs)))
    await asyncio.gather(*(api.runs.join(t, r) for api, t, r in submitted))
    elapsed = time.monotonic() - started
    statuses = [(await api.runs.get(t, r))["status"] for api, t, r in submitted]
    if statuses.count("success") != runs:
        raise RuntimeError(f"not every run succeeded: {statuses}")
    return elapsed


def measure(instances: int, args: argparse.Namespace) -> list[float]:
    names = [f"i{k}" for k in range(instances)]
    with tempfile.TemporaryDirectory(prefix="aegra-bench-") as tmp, \
            Cluster(Path(tmp), jobs_per_instance=args.jobs, latency_s=args.latency) as cluster:
        cluster.start(*names)
        asyncio.run(batch(cluster, names, 4))  # warm-up: graph modules, connection pools
        return [asyncio.run(batch(cluster, names, args.runs)) for _ in range(args.repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--jobs", type=int, default=10, help="concurrent runs per instance")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if reason := unavailable():
        sys.exit(f"cannot run: {reason}")
    rows, raw = [], {}
    for n in args.instances:
        times = measure(n, args)
        raw[n] = times
        best = min(times)
        rows.append([n, n * args.jobs, args.runs, round(statistics.median(times), 2), round(best, 2),
                     round(args.runs / best, 2)])
    base = rows[0][-1]
    for row in rows:
        row.append(f"{row[-1] / base:.2f}x")
    print_table(["instances", "runs in flight (max)", "runs", "median s", "best s", "runs/s (best)",
                 "vs first"], rows)
    write_results(f"scale_out_jobs{args.jobs}", {"args": vars(args), "seconds": raw, "rows": rows})


if __name__ == "__main__":
    main()
