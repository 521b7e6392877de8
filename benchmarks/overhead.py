"""Orchestration overhead: wall and CPU time per task with a zero-latency model.

Plans of 1, 10 and 50 independent tasks on our supervisor (max_concurrency 8) against
langgraph-supervisor handing off to one worker N times in a row, each with an in-memory and
a SQLite checkpointer (durability "sync", as the CLI runs). The median of --repeats runs.
The model reports fixed usage, so counting tokens of long prompts is not timed.

    .venv/bin/python -m benchmarks.overhead [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from benchmarks.common import (
    Outcome,
    median,
    print_table,
    run_baseline,
    run_ours,
    wide,
    write_results,
)
from graph.persistence import open_sqlite

SIZES = (1, 10, 50)
TOKENS = (100, 20)
"""Fixed usage per call, so the model's token counting (longer prompts for the baseline) is
not timed as orchestration."""


@asynccontextmanager
async def saver(kind: str, where: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """A fresh checkpointer: in memory, or a new SQLite file opened as the product opens it
    (``graph.persistence.open_sqlite``), for both systems."""
    if kind == "memory":
        yield InMemorySaver()
        return
    async with open_sqlite(where / f"{kind}.sqlite") as sqlite:
        yield sqlite


async def measure(system: str, n: int, kind: str, repeats: int) -> dict[str, Any]:
    outcomes: list[Outcome] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            async with saver(kind, Path(tmp)) as cp:
                if system == "ours":
                    outcomes.append(await run_ours(wide(n), Path(tmp), checkpointer=cp, tokens=TOKENS))
                else:
                    outcomes.append(await run_baseline(wide(n), checkpointer=cp, tokens=TOKENS))
    wall = median([o.wall_s for o in outcomes])
    cpu = median([o.cpu_s for o in outcomes])
    return {"system": system, "tasks": n, "checkpointer": kind, "repeats": repeats,
            "wall_s": wall, "cpu_s": cpu, "wall_ms_per_task": 1000 * wall / n,
            "cpu_ms_per_task": 1000 * cpu / n, "model_calls": outcomes[0].model_calls,
            "all_ok": all(o.ok for o in outcomes), "walls": [o.wall_s for o in outcomes]}


async def main(repeats: int) -> None:
    for system in ("ours", "baseline"):  # warm imports, registries and caches
        await measure(system, 2, "memory", 1)
    rows = [await measure(system, n, kind, repeats)
            for kind in ("memory", "sqlite") for n in SIZES for system in ("ours", "baseline")]
    marginal = {}
    for kind in ("memory", "sqlite"):
        for system in ("ours", "baseline"):
            by_n = {r["tasks"]: r for r in rows if r["system"] == system and r["checkpointer"] == kind}
            marginal[f"{system}/{kind}"] = {
                "wall_ms_per_extra_task": 1000 * (by_n[50]["wall_s"] - by_n[10]["wall_s"]) / 40,
                "cpu_ms_per_extra_task": 1000 * (by_n[50]["cpu_s"] - by_n[10]["cpu_s"]) / 40,
            }
    print_table(
        ["checkpointer", "tasks", "system", "model calls", "wall s (min–max)", "CPU s", "wall ms/task",
         "CPU ms/task", "ok"],
        [[r["checkpointer"], r["tasks"], r["system"], r["model_calls"],
          f"{r['wall_s']:.3f} ({min(r['walls']):.3f}–{max(r['walls']):.3f})", r["cpu_s"],
          r["wall_ms_per_task"], r["cpu_ms_per_task"], r["all_ok"]] for r in rows],
    )
    print()
    print_table(["system/checkpointer", "wall ms per extra task (10→50)", "CPU ms per extra task"],
                [[k, v["wall_ms_per_extra_task"], v["cpu_ms_per_extra_task"]] for k, v in marginal.items()])
    path = write_results("overhead", {"repeats": repeats, "max_concurrency": 8, "rows": rows,
                                      "marginal": marginal})
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    asyncio.run(main(parser.parse_args().repeats))
