"""What a goal that gives code wants done with it, judged by the coder's model: fix a bug,
change or extend it, or use it as it is (``agents.flows.coder``: three labelled options read
as likelihoods, after the coder's worked examples). Only "fix" makes the calls the goal
mentions evidence of a bug, so a wrong "fix" would drop right tests and a wrong "change" or
"use" would leave a reported bug unchecked.

Goals: ``benchmarks/data/given_code_dev.jsonl`` (written for tuning; never dataset goals) or
any JSONL of ``{"goal", "want"}``.

    .venv/bin/python -m benchmarks.given_code_judgment [--file F] [--out F.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from agents.flows.coder import (
    GIVEN_CODE_EXAMPLES,
    GIVEN_CODE_OPTIONS,
    GIVEN_CODE_QUESTION,
    OPTION_SYSTEM,
)
from benchmarks.common import report
from core.models import achat_model
from core.models.judgment import choose
from core.settings import load_settings

DATA = Path(__file__).with_name("data") / "given_code_dev.jsonl"


async def main(path: Path, out: Path | None) -> None:
    settings = load_settings()
    model = await achat_model(settings, "coder")
    rows = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        started = time.perf_counter()
        verdict = await choose(model, OPTION_SYSTEM, f"Goal: {item['goal']}\nQuestion: {GIVEN_CODE_QUESTION}",
                               GIVEN_CODE_OPTIONS, examples=GIVEN_CODE_EXAMPLES, default="change")  # fmt: skip
        row = {"goal": item["goal"], "want": item["want"], "got": verdict.choice,
               "scores": {k: round(v, 3) for k, v in verdict.scores.items()},
               "s": round(time.perf_counter() - started, 1)}  # fmt: skip
        rows.append(row)
        print(f"want={row['want']:6} got={row['got']:6} {row['scores']} | {item['goal'][:70]!r}", flush=True)
    summary = {"goals": len(rows), "right": sum(r["want"] == r["got"] for r in rows),
               "model": settings.model_name_for("coder")}  # fmt: skip
    report(summary, rows, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.file, args.out))
