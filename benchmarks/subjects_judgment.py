"""Parallel research on the embedded model: does the supervisor tell a goal that asks to look
up separate subjects (to compare or combine) from one that asks about one subject?

Two forms of the question, each after the same worked examples from the plan library (goals
with research, about half of them split by subject), read as likelihoods:

- ``choice`` (the product's, ``graph.planning.judged.subjects``): two labelled options, one
  subject or several;
- ``yesno``: "Does it ask to look up two or more separate subjects, to compare or combine
  them?" (the product's form before).

Goals: ``benchmarks/data/subjects_dev.jsonl`` (written for tuning; never dataset goals) or any
JSONL of ``{"goal", "separate"}``; every goal has a research stage that feeds a later one,
which is when the planner asks.

    .venv/bin/python -m benchmarks.subjects_judgment [--form choice|yesno] [--file F] [--out F.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from benchmarks.common import p_yes_after_examples, report
from core.models import achat_model
from core.settings import load_settings
from graph.planning.judged import SEPARATE_LIKELIHOOD, subjects
from graph.planning.library import PlanLibrary, library_for

ASKS_SEPARATE = "Does it ask to look up two or more separate subjects, to compare or combine them?"
"""The yes/no form measured against the product's option form."""
AGENTS = ["researcher", "coder", "analyst", "writer", "reviewer", "support"]
DATA = Path(__file__).with_name("data") / "subjects_dev.jsonl"


async def main(path: Path, out: Path | None, form: str) -> None:
    settings = load_settings()
    model = await achat_model(settings, "supervisor")
    pool = PlanLibrary([e for e in library_for(settings).examples if "researcher" in e.needs])
    rows = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        goal, want = item["goal"], bool(item["separate"])
        started = time.perf_counter()
        if form == "choice":
            p_yes = (await subjects(model, goal, pool, AGENTS)).p("several")
        else:
            p_yes = await p_yes_after_examples(model, goal, ASKS_SEPARATE, pool, lambda e: e.parallel_research, AGENTS)
        row = {"goal": goal, "want": want, "p_yes": round(p_yes, 3), "decided": p_yes >= SEPARATE_LIKELIHOOD,
               "judge_s": round(time.perf_counter() - started, 1)}  # fmt: skip
        rows.append(row)
        print(f"{'Y' if want else 'n'} p={row['p_yes']:.2f} {'SEPARATE' if row['decided'] else 'one     '} "
              f"| {goal[:90]}", flush=True)  # fmt: skip
    summary = {
        "goals": len(rows), "right": sum(r["want"] == r["decided"] for r in rows),
        "false_yes": sum(r["decided"] and not r["want"] for r in rows),
        "false_no": sum(r["want"] and not r["decided"] for r in rows),
        "max_p_one": max((r["p_yes"] for r in rows if not r["want"]), default=None),
        "min_p_separate": min((r["p_yes"] for r in rows if r["want"]), default=None),
        "model": settings.model_name_for("supervisor"), "form": form,
    }  # fmt: skip
    report(summary, rows, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--form", choices=["choice", "yesno"], default="choice",
                        help="choice: the product's two options; yesno: a yes/no question")
    args = parser.parse_args()
    asyncio.run(main(args.file, args.out, args.form))
