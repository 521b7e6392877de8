"""Project plans on the embedded model: does the supervisor tell a goal that asks for several
modules from one that asks for one, and is its module design accepted by the checks?

For each goal: the product's question (``graph.planning.design.layout``: one module or
several, two labelled options read as likelihoods, worked examples from the plan library) or,
with ``--form yesno``, the same as a yes/no question; the product's decision (its bar, lower
when the goal names two or more ``.py`` files, higher when it names one) and, with ``--design``, the whole
``judge_project`` call: whether a design passed ``design_problems`` and its files.

Goals: ``benchmarks/data/projects_dev.jsonl`` (written for tuning; never dataset goals) or any
JSONL of ``{"goal", "project"}``.

    .venv/bin/python -m benchmarks.project_judgment [--design] [--form yesno|choice] [--file F] [--out F.json]
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
from graph.planning.design import judge_project, layout, project_bar
from graph.planning.library import PlanLibrary, library_for

IS_PROJECT = "Does it ask for code split into two or more modules (separate .py files)?"
"""The yes/no form measured against the product's option form."""
AGENTS = ["researcher", "coder", "analyst", "writer", "reviewer", "support"]
DATA = Path(__file__).with_name("data") / "projects_dev.jsonl"


async def main(path: Path, design: bool, out: Path | None, form: str) -> None:
    settings = load_settings()
    model = await achat_model(settings, "supervisor")
    library = library_for(settings)
    pool = PlanLibrary([e for e in library.examples if "coder" in e.needs])
    rows = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        goal, want = item["goal"], bool(item["project"])
        started = time.perf_counter()
        if form == "choice":  # the product's form
            p_yes = (await layout(model, goal, pool, AGENTS)).p("several")
        else:
            p_yes = await p_yes_after_examples(model, goal, IS_PROJECT, pool, lambda e: e.is_project, AGENTS)
        bar = project_bar(goal)
        row = {"goal": goal, "want": want, "p_yes": round(p_yes, 3), "decided": p_yes >= bar, "judge_s": round(time.perf_counter() - started, 1)}  # fmt: skip
        if design and row["decided"]:
            started = time.perf_counter()
            project = await judge_project(model, goal, library, AGENTS)
            row["design_s"] = round(time.perf_counter() - started, 1)
            row["design"] = [m.file for m in project.design.modules] if project.design else None
            row["notes"] = list(project.notes)
        rows.append(row)
        print(f"{'Y' if want else 'n'} p={row['p_yes']:.2f} {'PROJECT' if row['decided'] else 'single '} "
              f"{row.get('design', '')} | {goal[:80]}", flush=True)  # fmt: skip
    right = sum(r["want"] == r["decided"] for r in rows)
    summary = {
        "goals": len(rows), "right": right,
        "false_yes": sum(r["decided"] and not r["want"] for r in rows),
        "false_no": sum(r["want"] and not r["decided"] for r in rows),
        "max_p_single": max((r["p_yes"] for r in rows if not r["want"]), default=None),
        "min_p_project": min((r["p_yes"] for r in rows if r["want"]), default=None),
        "designs_accepted": sum(1 for r in rows if r.get("design")),
        "model": settings.model_name_for("supervisor"), "form": form,
    }  # fmt: skip
    report(summary, rows, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA)
    parser.add_argument("--design", action="store_true", help="also design the goals judged projects")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--form", choices=["choice", "yesno"], default="choice",
                        help="choice: the product's two options (one module or several); yesno: a yes/no question")
    args = parser.parse_args()
    asyncio.run(main(args.file, args.design, args.out, args.form))
