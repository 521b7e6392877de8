"""CPU per task, and pydantic JSON-schema builds per task, on the test model.

A plan of N independent tasks on our supervisor (in-memory checkpointer, zero-latency test
model with fixed usage); the median CPU time of --repeats runs, and how many times
``BaseModel.model_json_schema`` ran (counted by wrapping it) per task.

    PYTHONPATH=. .venv/bin/python -m benchmarks.schema_cpu [--tasks 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from benchmarks.common import median, run_ours, wide

_builds = 0
_original = BaseModel.model_json_schema.__func__  # type: ignore[attr-defined]


def _counting(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
    global _builds
    _builds += 1
    return _original(cls, *args, **kwargs)  # type: ignore[no-any-return]


async def main(n: int, repeats: int) -> None:
    global _builds
    BaseModel.model_json_schema = classmethod(_counting)  # type: ignore[assignment,method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        await run_ours(wide(2), Path(tmp), checkpointer=InMemorySaver(), tokens=(100, 20))  # warm
    cpus, builds = [], []
    for _ in range(repeats):
        _builds = 0
        with tempfile.TemporaryDirectory() as tmp:
            out = await run_ours(wide(n), Path(tmp), checkpointer=InMemorySaver(), tokens=(100, 20))
        assert out.ok, out.detail
        cpus.append(out.cpu_s)
        builds.append(_builds)
    print(f"tasks={n} repeats={repeats} cpu_ms_per_task median={1000 * median(cpus) / n:.2f} "
          f"(runs: {', '.join(f'{1000 * c / n:.1f}' for c in cpus)}) "
          f"schema_builds_per_task={median([float(b) for b in builds]) / n:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.repeats))
