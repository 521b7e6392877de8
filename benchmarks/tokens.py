"""Tokens per workflow: prompt and completion tokens for the same goals, us and the baseline.

Token counts are TestChatModel's default: ``count_tokens_approximately`` of the real prompt
(messages and bound tool schemas) and reply, so context size is what is measured. Every
worker answers ``--answer-words`` words. Our workers see their task, the goal and their
dependencies' results; the baseline's worker and supervisor see the whole message history.

    .venv/bin/python -m benchmarks.tokens [--answer-words 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Task,
    chain,
    diamond,
    print_table,
    run_baseline,
    run_ours,
    wide,
    write_results,
)

GOALS: dict[str, Callable[[], list[Task]]] = {
    "1 task": lambda: wide(1), "10 independent": lambda: wide(10), "chain 8": lambda: chain(8),
    "diamond 1-6-1": lambda: diamond(6), "50 independent": lambda: wide(50),
}


async def main(answer_words: int) -> None:
    rows: list[dict[str, Any]] = []
    for goal, make in GOALS.items():
        tasks = make()
        with tempfile.TemporaryDirectory() as tmp:
            ours = await run_ours(tasks, Path(tmp), answer_words=answer_words)
        base = await run_baseline(tasks, answer_words=answer_words)
        for system, o in (("ours", ours), ("baseline", base)):
            rows.append({"goal": goal, "tasks": len(tasks), "system": system, "model_calls": o.model_calls,
                         "prompt_tokens": o.tokens_in, "completion_tokens": o.tokens_out,
                         "total_tokens": o.tokens_in + o.tokens_out,
                         "tokens_per_task": (o.tokens_in + o.tokens_out) / len(tasks),
                         "largest_prompt": o.detail["max_prompt"], "ok": o.ok})
    ratio = {}
    for goal in GOALS:
        ours_row, base_row = (next(r for r in rows if r["goal"] == goal and r["system"] == s)
                              for s in ("ours", "baseline"))
        ratio[goal] = base_row["total_tokens"] / ours_row["total_tokens"]
    print_table(
        ["goal", "system", "model calls", "prompt tok", "completion tok", "total", "tok/task",
         "largest prompt", "baseline/ours", "ok"],
        [[r["goal"], r["system"], r["model_calls"], r["prompt_tokens"], r["completion_tokens"],
          r["total_tokens"], r["tokens_per_task"], r["largest_prompt"],
          ratio[r["goal"]] if r["system"] == "baseline" else "", r["ok"]] for r in rows],
    )
    path = write_results("tokens", {"answer_words": answer_words, "counting": "count_tokens_approximately",
                                    "rows": rows, "baseline_over_ours": ratio})
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answer-words", type=int, default=100, help="words in every worker answer")
    asyncio.run(main(parser.parse_args().answer_words))
