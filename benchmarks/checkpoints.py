"""Checkpoint growth: bytes written to the SQLite checkpoint database per step of a 50-task run.

Runs 50 tasks (50 independent, 8 per round; and a chain of 50, one per round) on our
supervisor, and 50 sequential handoffs on the baseline, each into a fresh SQLite file with
durability "sync". Then reads the database: for every root checkpoint, the bytes of its
checkpoint and metadata blobs plus the writes stored against it, and the number of blackboard
results (baseline: messages) it holds; the slope of step bytes against that number says
whether a step costs more as the run goes on. Sub-graph
checkpoints (each specialist's steps, in the task's namespace) are summed separately.

    .venv/bin/python -m benchmarks.checkpoints [--answer-words 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from benchmarks.common import chain, print_table, run_baseline, run_ours, wide, write_results

N = 50


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs) or 1.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return slope, my - slope * mx


def analyse(db: Path, channel: str) -> dict[str, Any]:
    """Per-step bytes of the root namespace; totals of the sub-graph namespaces.

    ``items`` is how many entries ``channel`` holds at a step: the length of its value when
    the checkpoint stores it, else (a delta channel, stored as writes) the tasks finished in
    the writes so far. ``snapshot`` marks a step whose checkpoint stores the channel whole.
    """
    serde = JsonPlusSerializer()
    con = sqlite3.connect(db)
    writes: dict[tuple[str, str], int] = {}
    for ns, cid, size in con.execute(
            "SELECT checkpoint_ns, checkpoint_id, SUM(LENGTH(value)) FROM writes GROUP BY 1, 2"):
        writes[(ns, cid)] = int(size or 0)
    deltas: dict[str, list[tuple[str, bytes]]] = {}
    for cid, typ, value in con.execute("SELECT checkpoint_id, type, value FROM writes "
                                       "WHERE checkpoint_ns = '' AND channel = ?", (channel,)):
        deltas.setdefault(cid, []).append((typ, value))
    steps: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    finished: set[str] = set()
    sub = {"checkpoints": 0, "bytes": 0}
    rows = con.execute("SELECT checkpoint_ns, checkpoint_id, type, checkpoint, metadata FROM checkpoints "
                       "ORDER BY checkpoint_id").fetchall()
    for ns, cid, typ, blob, meta in rows:
        size = len(blob) + len(meta) + writes.get((ns, cid), 0)
        if ns:
            sub["checkpoints"] += 1
            sub["bytes"] += size
            continue
        values = last = serde.loads_typed((typ, blob))["channel_values"]
        value = values.get(channel)
        whole = isinstance(value, list | dict)
        steps.append({"step": json.loads(meta).get("step"), "checkpoint_bytes": len(blob),
                      "metadata_bytes": len(meta), "writes_bytes": writes.get((ns, cid), 0), "bytes": size,
                      "items": len(value) if whole else len(finished), "snapshot": value is not None,
                      "channel_bytes": len(serde.dumps_typed(value)[1]) if value is not None else 0})
        for wtyp, wvalue in deltas.get(cid, []):  # writes made in the step after this checkpoint
            update = serde.loads_typed((wtyp, wvalue))
            if isinstance(update, dict):
                finished.update(k for k, r in update.items() if isinstance(r, dict) and r.get("status") == "done")
    con.close()
    slope, intercept = fit([float(s["items"]) for s in steps], [float(s["bytes"]) for s in steps])
    files = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    root_total = sum(s["bytes"] for s in steps)
    return {"root_steps": len(steps), "root_bytes": root_total, "subgraph": sub,
            "total_bytes": root_total + sub["bytes"], "file_bytes": files,
            "first_step_bytes": steps[0]["bytes"], "last_step_bytes": steps[-1]["bytes"],
            "max_step_bytes": max(s["bytes"] for s in steps),
            "mean_step_bytes": root_total / len(steps),
            "snapshot_steps": sum(1 for s in steps if s["snapshot"]) if channel == "results" else None,
            "step_bytes_per_item": slope, "step_bytes_at_zero_items": intercept,
            "channel": channel, "steps": steps,
            "last_step_channel_bytes": {k: len(serde.dumps_typed(v)[1]) for k, v in last.items()}}


async def measure(name: str, answer_words: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cp.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(db)) as cp:
            await cp.setup()
            if name == "baseline, 50 handoffs":
                outcome = await run_baseline(wide(N), checkpointer=cp, answer_words=answer_words)
            else:
                tasks = chain(N) if name.startswith("ours, chain") else wide(N)
                outcome = await run_ours(tasks, Path(tmp), checkpointer=cp, answer_words=answer_words)
        report = analyse(db, "messages" if name.startswith("baseline") else "results")
    return {"run": name, "ok": outcome.ok, "wall_s": outcome.wall_s, **report}


async def main(answer_words: int) -> None:
    runs = [await measure(name, answer_words) for name in
            ("ours, 50 independent", "ours, chain of 50", "baseline, 50 handoffs")]
    print_table(
        ["run", "root steps", "first step B", "last step B", "mean step B", "max step B", "root total kB",
         "sub-graph ckpts", "sub-graph kB", "file kB", "step B per item (slope)", "ok"],
        [[r["run"], r["root_steps"], r["first_step_bytes"], r["last_step_bytes"], round(r["mean_step_bytes"]),
          r["max_step_bytes"], round(r["root_bytes"] / 1024), r["subgraph"]["checkpoints"],
          round(r["subgraph"]["bytes"] / 1024), round(r["file_bytes"] / 1024), round(r["step_bytes_per_item"]),
          r["ok"]] for r in runs],
    )
    print()
    for r in runs:  # the growth, at a few points of the run
        picks = [r["steps"][int(i * (len(r["steps"]) - 1) / 4)] for i in range(5)]
        print(f"{r['run']}: " + "; ".join(
            f"step {s['step']}: {s['items']} {r['channel']}, {s['bytes']} B ({s['channel_bytes']} B {r['channel']})"
            for s in picks))
        print(f"  channels at the last step (bytes): {r['last_step_channel_bytes']}")
    path = write_results("checkpoints", {"tasks": N, "answer_words": answer_words, "backend": "sqlite",
                                         "durability": "sync", "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answer-words", type=int, default=100, help="words in every worker answer")
    asyncio.run(main(parser.parse_args().answer_words))
