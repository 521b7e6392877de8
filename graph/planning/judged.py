"""Which specialists a goal needs, judged by the model after worked examples.

The model sees the plan library's goals nearest this one as earlier turns, each answered
with the specialists its plan used, then the goal; its answer is constrained (JSON schema,
decoded under a grammar by llama.cpp) to a list of the run's agent names. Of the forms
measured for this decision (``benchmarks/planning_forms.py``; docs/benchmarks.md, "Planning
judgments") — this list, one yes/no question per agent read as likelihoods, one
labelled-option choice among the neighbours' plans — the list was the most accurate and the
cheapest (one call); on the built-in 1.5B model, the supervisor's default tier, it is right
on 22 of 24 unseen goals. Code then composes the plan (``graph.planning.compose``).

When a research stage feeds a later one, a question of two labelled options (read as
likelihoods) decides whether the goal asks about separate subjects, and a structured call
names them (parallel research).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, create_model

from agents import AgentRegistry
from core.models import StructuredOutputError, ainvoke_structured
from core.models.judgment import Example, Judgment, Option, choose
from graph.planning import prompts
from graph.planning.library import PlanExample, PlanLibrary

__all__ = ["EXAMPLES", "SUBJECTS", "SUBJECTS_QUESTION", "Needs", "judge_needs", "subjects"]

EXAMPLES = 8
"""Worked examples shown per judgment."""
SUBJECTS_QUESTION = "How many separate subjects does the goal ask to look up?"
SUBJECTS = (
    Option("one", "One subject (one topic, document or question)"),
    Option("several", "Two or more separate subjects, to compare or combine"),
)
"""Parallel research as two labelled options. Measured against the yes/no question "Does it
ask to look up two or more separate subjects…?" on goals written for tuning
(``benchmarks/subjects_judgment.py``; docs/benchmarks.md, "Planning judgments"): on 20 goals
the yes/no form said "yes" to every one-subject goal (p 0.61–0.75), the options separated
them (one subject at most 0.60, separate subjects from 0.51)."""
SEPARATE_LIKELIHOOD = 0.6
"""The probability of "several" from which the research is split by subject. Above even
odds because the two errors cost differently: one research task for two subjects still
covers both (the researcher searches once per part of a question), while a split of one
subject sends researchers after made-up subjects."""


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


def _parallel(example: PlanExample) -> bool:
    return example.parallel_research


async def subjects(model: BaseChatModel, goal: str, pool: PlanLibrary, agents: Sequence[str]) -> Judgment:
    """The model's answer to :data:`SUBJECTS_QUESTION` (``one``/``several``), after worked
    examples from ``pool`` (goals with research), about half of them split by subject."""
    examples = [
        Example(_question(e.goal, SUBJECTS_QUESTION), "several" if _parallel(e) else "one")
        for e in pool.balanced(goal, _parallel, EXAMPLES, agents)
    ]
    return await choose(
        model, prompts.OPTION_SYSTEM, _question(goal, SUBJECTS_QUESTION), SUBJECTS,
        examples=examples, default="one",
    )  # fmt: skip


async def judge_needs(
    model: BaseChatModel, goal: str, registry: AgentRegistry, library: PlanLibrary
) -> Needs:
    """Which specialists ``goal`` needs: one call, constrained to a list of agent names,
    after the library's nearest goals as worked turns (each answered with its plan's
    specialists, nearest last); then, for a research stage feeding another, whether it
    covers separate subjects (and which)."""
    names = list(registry.names())
    schema = _needs_schema(tuple(names))
    messages: list[BaseMessage] = [SystemMessage(prompts.NEEDS_LIST_SYSTEM + "\n" + registry.catalogue())]
    for e in reversed(library.nearest(goal, EXAMPLES, names)):
        ordered = [n for n in names if n in e.needs]
        messages.append(HumanMessage(f"Goal: {e.goal}"))
        messages.append(AIMessage(json.dumps({"needs": ordered})))
    messages.append(HumanMessage(f"Goal: {goal.strip()}"))
    result = await ainvoke_structured(model, schema, messages, attempts=2)
    needed = frozenset(result.value.needs)  # type: ignore[attr-defined]  # a create_model schema
    notes: list[str] = []
    topics: tuple[str, ...] = ()
    if "researcher" in needed and "support" not in needed and needed - {"researcher", "analyst"}:
        topics, note = await _topics(model, goal, library, names)
        if note:
            notes.append(note)
    return Needs(needed, topics=topics, notes=tuple(notes))


@lru_cache(maxsize=16)
def _needs_schema(names: tuple[str, ...]) -> type[BaseModel]:
    agent: Any = Literal[names]
    return create_model(
        "Needs",
        needs=(list[agent], Field(min_length=1, max_length=4, description="The specialists the goal needs.")),
    )


async def _topics(
    model: BaseChatModel, goal: str, library: PlanLibrary, names: Sequence[str]
) -> tuple[tuple[str, ...], str]:
    pool = PlanLibrary([e for e in library.examples if "researcher" in e.needs])
    if (await subjects(model, goal, pool, names)).p("several") < SEPARATE_LIKELIHOOD:
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


