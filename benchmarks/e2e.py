"""End to end on the embedded model: one goal per scenario through the real CLI.

Each goal runs as ``orchestrator --data-dir TMP run GOAL --model local --auto-approve --json``
in a fresh data directory, bounded by a timeout; wall time is measured around the process,
tokens come from the run's own metrics. Failures and timeouts are recorded, not retried.

    .venv/bin/python -m benchmarks.e2e [--timeout 900] [--only software]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from benchmarks.common import RESULTS_DIR, print_table, write_results
from core.usage import run_metrics
from graph.supervisor import build_graph

SCENARIOS = {
    "quick_start": "Write a Python function that checks whether a string is a palindrome, with tests.",
    "software": "Write a Python module slugify.py with a slugify(text) function and pytest tests for it; run the tests.",
    "research": "Using the knowledge base, explain how BM25 ranks documents in full-text search.",
    "customer_service": "Customer C001 asks for a refund of order O1001, which arrived damaged; the headphones have been returned. Check the policy and handle it.",
}
"""The README's quick-start goal and one goal per scenario (the README's examples)."""


def partial(data_dir: str) -> dict[str, Any]:
    """What a run that did not finish got done: its last state, read through the graph
    (the blackboard is a delta channel, so the raw checkpoint does not hold it)."""
    db = Path(data_dir) / "checkpoints.sqlite"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    row = con.execute("SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' LIMIT 1").fetchone()
    con.close()
    if row is None:
        return {}
    values = asyncio.run(_last_state(db, row[0]))
    m = run_metrics(values)
    results = values.get("results") or {}
    return {"tasks": f"{m['tasks_completed']}/{m['tasks_total']}", "tokens_in": m["tokens_in"],
            "tokens_out": m["tokens_out"], "model_calls": m["model_calls"],
            "plan": [f"{t['id']}:{t['agent']}:{results.get(t['id'], {}).get('status', 'pending')}"
                     for t in values.get("tasks") or []],
            "note": "partial: finished tasks and supervisor calls only"}


async def _last_state(db: Path, thread_id: str) -> dict[str, Any]:
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        snapshot = await build_graph(checkpointer=saver).aget_state({"configurable": {"thread_id": thread_id}})
    return dict(snapshot.values or {})


def run_goal(
    name: str, goal: str, timeout_s: float, model: str = "local", config: str | None = None
) -> dict[str, Any]:
    """One CLI run; the outcome's metrics, or why there are none."""
    cli = Path(sys.executable).with_name("orchestrator")
    data_dir = tempfile.mkdtemp(prefix=f"bench-e2e-{name}-")
    cmd = [str(cli), *(["--config", config] if config else []), "--data-dir", data_dir,
           "run", goal, "--model", model, "--auto-approve", "--json"]  # fmt: skip
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    row: dict[str, Any] = {"scenario": name, "goal": goal, "timeout_s": timeout_s, "data_dir": data_dir,
                           "started": time.strftime("%H:%M:%S"), "loadavg_before": os.getloadavg()[0]}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {**row, "status": "timeout", "wall_s": round(time.perf_counter() - start, 1),
                **partial(data_dir)}
    row["wall_s"] = round(time.perf_counter() - start, 1)
    row["exit_code"] = proc.returncode
    try:
        outcome = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {**row, "status": "no-json", "stderr_tail": proc.stderr[-1500:], **partial(data_dir)}
    m = outcome["metrics"]
    wall = row["wall_s"] or 1.0
    return {
        **row,
        "status": outcome["status"],
        "tasks": f"{m['tasks_completed']}/{m['tasks_total']}",
        "plan": [f"{t['id']}:{t['agent']}:{t['status']}" for t in outcome.get("plan", [])],
        "run_latency_s": m["latency_s"],
        "tokens_in": m["tokens_in"],
        "tokens_out": m["tokens_out"],
        "model_calls": m["model_calls"],
        "completion_tokens_per_s": round(m["tokens_out"] / wall, 2),
        "total_tokens_per_s": round(m["tokens"] / wall, 2),
        "answer_head": str(outcome.get("answer", ""))[:400],
        "error": outcome.get("error") or outcome.get("stop_reason") or "",
        "stderr_tail": proc.stderr[-800:] if outcome["status"] != "completed" else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per goal")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--model", default="local", help="model name (default: the embedded one)")
    parser.add_argument("--config", help="orchestrator.toml defining --model when not built in")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (report the median)")
    args = parser.parse_args()
    rows = []
    for name in args.only or SCENARIOS:
        print(f"running {name} …", file=sys.stderr, flush=True)
        for _ in range(args.repeat):
            rows.append(run_goal(name, SCENARIOS[name], args.timeout, args.model, args.config))
            print(json.dumps(rows[-1], indent=1), file=sys.stderr, flush=True)
    previous = RESULTS_DIR / "e2e.json"
    earlier: list[dict[str, Any]] = []
    if args.only and previous.exists():  # keep the other scenarios' last results
        ran = {r["scenario"] for r in rows}
        old = json.loads(previous.read_text())
        earlier = old.get("earlier_attempts", []) + [r for r in old["runs"] if r["scenario"] in ran]
        rows = [r for r in old["runs"] if r["scenario"] not in ran] + rows
        rows.sort(key=lambda r: list(SCENARIOS).index(r["scenario"]))
    print_table(
        ["scenario", "status", "tasks", "wall s", "calls", "prompt tok", "completion tok",
         "completion tok/s", "total tok/s"],
        [[r["scenario"], r["status"], r.get("tasks", "-"), r["wall_s"], r.get("model_calls", "-"),
          r.get("tokens_in", "-"), r.get("tokens_out", "-"), r.get("completion_tokens_per_s", "-"),
          r.get("total_tokens_per_s", "-")] for r in rows],
    )
    path = write_results("e2e", {"model": args.model, "runs": rows, "earlier_attempts": earlier})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
