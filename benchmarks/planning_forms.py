"""Planning judgments on the embedded model: which form of question answers "which
specialists does this goal need?" best.

Three forms, each shown the plan library's nearest examples (``graph.planning.library``):

- ``list``: the product's form (``graph.planning.judged.judge_needs``): one call whose reply
  is constrained to a JSON list of agent names, examples as earlier turns;
- ``yesno``: one yes/no question per agent (its ``need_question``), read as the likelihood of
  "Yes", examples balanced half yes / half no; needed when p(yes) >= 0.5;
- ``pick``: one labelled-option question among the distinct specialist sets of the nearest
  examples, read as likelihoods over the option letters.

Goals: ``benchmarks/data/needs_dev.jsonl`` (written for tuning; never dataset goals) or any
JSONL of ``{"goal", "needs"}``. Prints exact-set accuracy, per-agent errors and time.

    .venv/bin/python -m benchmarks.planning_forms [--forms list,yesno,pick] [--file F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from agents import AgentRegistry
from benchmarks.common import write_results
from core.models import chat_model
from core.models.judgment import Example, Option, choose, yes_no
from core.settings import load_settings
from graph.planning import prompts
from graph.planning.judged import EXAMPLES, Needs, judge_needs
from graph.planning.library import PlanExample, PlanLibrary, library_for

DEFAULT_FILE = Path(__file__).with_name("data") / "needs_dev.jsonl"
NEEDS_PICK_SYSTEM = """You decide which specialists of a team a user's goal needs. Read the
goal and pick the option that fits it."""
CANDIDATES = 6


async def by_yes_no(model: BaseChatModel, goal: str, registry: AgentRegistry, library: PlanLibrary) -> Needs:
    names = list(registry.names())

    async def ask(name: str) -> float:
        question = registry.get(name).need_question

        def has(e: PlanExample) -> bool:
            return name in e.needs

        shown = library.balanced(goal, has, EXAMPLES, names)
        examples = [Example(f"Goal: {e.goal}\nQuestion: {question}", "yes" if has(e) else "no") for e in shown]
        judgment = await yes_no(model, prompts.NEEDS_SYSTEM, f"Goal: {goal}\nQuestion: {question}", examples=examples)
        return judgment.p("yes")

    scores = dict(zip(names, await asyncio.gather(*(ask(n) for n in names)), strict=True))
    needed = {n for n, p in scores.items() if p >= 0.5} or {max(scores, key=lambda n: scores[n])}
    return Needs(frozenset(needed))


async def by_pick(model: BaseChatModel, goal: str, registry: AgentRegistry, library: PlanLibrary) -> Needs:
    names = list(registry.names())
    near = library.nearest(goal, 3 * EXAMPLES, names)
    sets: list[frozenset[str]] = []
    for e in near:
        if e.needs not in sets:
            sets.append(e.needs)
    sets = sets[:CANDIDATES]
    options = [Option(",".join(sorted(s)), " then ".join(sorted(s))) for s in sets]
    examples = [Example(f"Goal: {e.goal}", ",".join(sorted(e.needs))) for e in reversed(near[:EXAMPLES]) if e.needs in sets]
    judgment = await choose(model, NEEDS_PICK_SYSTEM, f"Goal: {goal}", options, examples=examples)
    return Needs(frozenset(judgment.choice.split(",")))


FORMS = {"list": judge_needs, "yesno": by_yes_no, "pick": by_pick}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", default="list,yesno,pick")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args()
    settings = load_settings()
    model = chat_model(settings, "supervisor")
    registry = AgentRegistry.builtin()
    library = library_for(settings)
    rows = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    report = {}
    for form in args.forms.split(","):
        exact, times = 0, []
        errors: dict[str, int] = {}
        for row in rows:
            start = time.perf_counter()
            needs = await FORMS[form](model, row["goal"], registry, library)
            times.append(time.perf_counter() - start)
            expected = set(row["needs"])
            exact += needs.agents == expected
            for agent in needs.agents ^ expected:
                errors[agent] = errors.get(agent, 0) + 1
        report[form] = {"exact": exact, "goals": len(rows), "median_s": round(statistics.median(times), 2),
                        "agent_errors": errors}
        print(f"| {form} | {exact}/{len(rows)} | {statistics.median(times):.1f} s | {errors} |", flush=True)
    write_results("planning_forms", report)


if __name__ == "__main__":
    asyncio.run(main())
