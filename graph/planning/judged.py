"""Which specialists a goal needs, judged by the model as closed questions after worked examples.

A small model cannot list a plan's specialists reliably (measured: docs/benchmarks.md,
"Planning judgments"), but it can answer closed questions about a goal when it is shown
worked examples — the plan library's nearest goals, each answered from its recorded plan:

1. **What does the goal ask for in the end?** One option per agent, its ``delivers`` trait
   (code, a text, a direct answer, figures, a support reply, a review).
2. **What material does that work need first?** One option per agent that ``provides``
   material to later stages (knowledge-base facts, figures from data), all of them, or none.
3. **Anything after it?** A yes/no per agent with a ``needed_when`` question (a review).

Options and yes/no are read as token likelihoods (``core.models.judgment``), the three
questions asked side by side. Code composes the plan from the answers
(``graph.planning.compose``). When a research stage feeds a later one, one more yes/no
decides whether the goal asks about separate subjects, and a structured call names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents import AgentRegistry
from core.models import StructuredOutputError, ainvoke_structured
from core.models.judgment import Example, Option, choose, yes_no
from graph.planning import prompts
from graph.planning.compose import ORDER
from graph.planning.library import PlanExample, PlanLibrary

__all__ = ["EXAMPLES", "Needs", "judge_needs"]

EXAMPLES = 8
"""Worked examples shown per judgment."""
ASKS_SEPARATE_SUBJECTS = (
    "Does it ask to look up two or more separate subjects, to compare or combine them?"
)


@dataclass(frozen=True)
class Needs:
    """What the model judged a goal needs."""

    agents: frozenset[str]
    """The specialists the plan will use."""
    topics: tuple[str, ...] = ()
    """Separate subjects to research side by side (empty: one research task)."""
    notes: tuple[str, ...] = ()
    """What happened on the way (for the plan version's reason)."""


class Topics(BaseModel):
    """The separate subjects to research for the goal."""

    topics: list[str] = Field(
        min_length=2,
        max_length=3,
        description="Two or three short subjects, one per research task.",
    )


def _question(goal: str, question: str) -> str:
    return f"Goal: {goal.strip()}\nQuestion: {question}"


NONE = "none"
"""The key of "no material beyond the goal" (the inputs question)."""
ALL = "all"
"""The key of "every kind of material" (the inputs question)."""


@dataclass(frozen=True)
class Questions:
    """The closed questions for one registry, and how a recorded plan answers them."""

    finals: tuple[str, ...]
    """Agents that may deliver the final result (all of them), in composition order."""
    providers: tuple[str, ...]
    """Agents that provide material to later stages."""
    addons: tuple[str, ...]
    """Agents added after the final result on a yes (``needed_when``)."""

    @classmethod
    def of(cls, registry: AgentRegistry) -> Questions:
        names = list(registry.names())
        rank = {n: i for i, n in enumerate(ORDER)}
        ordered = sorted(names, key=lambda n: (0 if n in rank else 1, rank.get(n, 0)))
        specs = {n: registry.get(n) for n in names}
        return cls(
            finals=tuple(ordered),
            providers=tuple(n for n in ordered if specs[n].provides),
            addons=tuple(n for n in ordered if specs[n].needed_when),
        )

    def final_of(self, needs: frozenset[str]) -> str:
        """The agent whose work a plan using ``needs`` ends with (add-ons aside)."""
        if "support" in needs:
            return "support"
        core = [n for n in self.finals if n in needs and n not in self.addons] or [
            n for n in self.finals if n in needs
        ]
        return core[-1]

    def inputs_of(self, needs: frozenset[str]) -> str:
        """The inputs answer of a plan using ``needs``."""
        final = self.final_of(needs)
        used = [n for n in self.providers if n in needs and n != final]
        if not used:
            return NONE
        return used[0] if len(used) == 1 else ALL


async def judge_needs(
    model: BaseChatModel, goal: str, registry: AgentRegistry, library: PlanLibrary
) -> Needs:
    """Which specialists ``goal`` needs: the final result, the material it needs first, and
    what comes after it, each a closed question after the library's nearest examples."""
    q = Questions.of(registry)
    names = list(registry.names())
    near = list(reversed(library.nearest(goal, EXAMPLES, names)))  # nearest last
    specs = {n: registry.get(n) for n in names}

    finals = [Option(n, specs[n].delivers or specs[n].description) for n in q.finals]
    final_examples = [Example(f"Goal: {e.goal}", q.final_of(e.needs)) for e in near]
    asks = [choose(model, prompts.FINAL_SYSTEM, f"Goal: {goal.strip()}", finals, examples=final_examples)]

    inputs = [Option(n, specs[n].provides) for n in q.providers]
    if len(inputs) >= 2:
        inputs.append(Option(ALL, "all of these: " + "; and ".join(specs[n].provides for n in q.providers)))
    inputs.append(Option(NONE, "nothing more: the goal itself gives what the work needs"))
    input_examples = [Example(f"Goal: {e.goal}", q.inputs_of(e.needs)) for e in near]
    asks.append(choose(model, prompts.INPUTS_SYSTEM, f"Goal: {goal.strip()}", inputs, examples=input_examples))

    for name in q.addons:
        question = specs[name].needed_when

        def has(e: PlanExample, name: str = name) -> bool:
            return name in e.needs and q.final_of(e.needs) != name

        shown = library.balanced(goal, has, EXAMPLES, names)
        examples = [Example(_question(e.goal, question), "yes" if has(e) else "no") for e in shown]
        asks.append(yes_no(model, prompts.NEEDS_SYSTEM, _question(goal, question), examples=examples))

    final, material, *after = await asyncio.gather(*asks)
    needed = {final.choice}
    notes = [f"final: {final.choice} {final.confidence:.2f}"]
    if final.choice != "support":
        if material.choice == ALL:
            needed |= set(q.providers) - {final.choice}
        elif material.choice != NONE and material.choice != final.choice:
            needed.add(material.choice)
        notes.append(f"material: {material.choice} {material.confidence:.2f}")
        for name, judgment in zip(q.addons, after, strict=True):
            if judgment.choice == "yes" and name != final.choice:
                needed.add(name)
                notes.append(f"{name} after: yes {judgment.confidence:.2f}")
    topics: tuple[str, ...] = ()
    if "researcher" in needed and "support" not in needed and needed - {"researcher", "analyst"}:
        topics, note = await _topics(model, goal, library, names)
        if note:
            notes.append(note)
    return Needs(frozenset(needed), topics=topics, notes=tuple(notes))


async def _topics(
    model: BaseChatModel, goal: str, library: PlanLibrary, names: Sequence[str]
) -> tuple[tuple[str, ...], str]:
    def has(e: PlanExample) -> bool:
        return e.parallel_research

    def researched(e: PlanExample) -> bool:
        return "researcher" in e.needs

    pool = PlanLibrary([e for e in library.examples if researched(e)])
    shown = pool.balanced(goal, has, EXAMPLES, names)
    examples = [Example(_question(e.goal, ASKS_SEPARATE_SUBJECTS), "yes" if has(e) else "no") for e in shown]
    separate = await yes_no(
        model, prompts.NEEDS_SYSTEM, _question(goal, ASKS_SEPARATE_SUBJECTS), examples=examples
    )
    if separate.choice != "yes":
        return (), ""
    messages: list[BaseMessage] = [SystemMessage(prompts.PLANNER_TOPICS)]
    for e in pool.nearest(goal, 2):
        if e.topics:
            messages.append(HumanMessage(f"Goal: {e.goal}\nSubjects: {'; '.join(e.topics)}"))
    messages.append(HumanMessage(f"Goal: {goal}"))
    try:
        result = await ainvoke_structured(model, Topics, messages, attempts=2)
    except StructuredOutputError as err:
        return (), f"no topics: {str(err).splitlines()[0]}"
    topics = tuple(t.strip() for t in result.value.topics if t.strip())
    if len(topics) < 2:
        return (), "sequential research: fewer than two subjects"
    return topics, ""


