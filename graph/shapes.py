"""Plan shapes: the planner a small model can carry.

A 0.5B model asked for a free-form task graph returns a schema-valid but meaningless one.
Asked to choose among these named shapes under a schema it did no better (2 of the 13
planning goals, docs/benchmarks.md §5), so the shape is chosen by code from cues in the goal
(:func:`classify`) and the model fills in only what needs language: the subjects of a
parallel research stage. Code builds the tasks: instructions from the goal, dependencies
from the agents' roles (each stage depends on the one before; tasks of one stage run in
parallel), ids in order, so a dependency can only name an earlier task. One-agent shapes
are the fast path: one task, the goal as its instruction, no model call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from graph.state import Task


@dataclass(frozen=True)
class Stage:
    agent: str
    instruction: str
    """A template over ``{goal}`` (and ``{topic}`` for a parallel stage)."""
    parallel: bool = False
    """One task per topic the planner names."""


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    example: str
    stages: tuple[Stage, ...]


GATHER = "Find in the knowledge base the facts needed for this goal, with their sources: {goal}"
ANSWER = "Answer from the knowledge base, citing its sources: {goal}"
WRITE = (
    "Write the text this goal asks for as finished prose, from the given material only (the "
    "results of the earlier tasks). Goal: {goal}"
)
WRITE_FROM_FIGURES = (
    "Write the text this goal asks for as finished prose, from the given material only (the "
    "figures of the earlier analysis). Goal: {goal}"
)
SHAPES: tuple[Shape, ...] = (
    Shape("code", "write or fix Python code (with its tests)",
          "Write a Python function that parses ISO 8601 dates, with unit tests.",
          (Stage("coder", "{goal}"),)),
    Shape("code_then_review", "write code, then have it reviewed",
          "Write a script that counts words in a file, then have the code reviewed.",
          (Stage("coder", "Write the code and its tests: {goal}"),
           Stage("reviewer", "Review the code from the earlier task for bugs and edge cases. Goal: {goal}"))),
    Shape("code_then_docs", "write code, then write documentation or text about it",
          "Implement a function that validates emails, test it, then write a README section.",
          (Stage("coder", "Write the code and its tests: {goal}"),
           Stage("writer", "Write the documentation the goal asks for, from the code of the earlier task. Goal: {goal}"))),
    Shape("research", "answer a question from the knowledge base",
          "What is BM25?", (Stage("researcher", ANSWER),)),
    Shape("research_then_write", "look facts up, then write a report, summary, FAQ or recommendation",
          "Compare full-text and vector search and write a one-page recommendation.",
          (Stage("researcher", GATHER),
           Stage("writer", WRITE))),
    Shape("parallel_research_then_write", "research two or three separate subjects, then write one text combining them",
          "Research how SQLite and PostgreSQL make commits durable, then write a comparison.",
          (Stage("researcher", "Find in the knowledge base, with sources: {topic}", parallel=True),
           Stage("writer", WRITE))),
    Shape("research_write_review", "look facts up, write a text, then have it checked",
          "Research our RAG pipeline, write an explainer, and have a reviewer check it.",
          (Stage("researcher", GATHER),
           Stage("writer", WRITE),
           Stage("reviewer", "Check the written text against the knowledge base and list any errors. Goal: {goal}"))),
    Shape("analyze", "compute numbers from a data file (CSV, SQLite)",
          "What is the total revenue per region in sales.csv?", (Stage("analyst", "{goal}"),)),
    Shape("analyze_then_write", "compute numbers from a data file, then write a summary, email or report",
          "Analyze sales.csv and write a short summary of the trends.",
          (Stage("analyst", "Compute the figures the goal needs from the data files: {goal}"),
           Stage("writer", WRITE_FROM_FIGURES))),
    Shape("support", "a customer, order, ticket, refund or support-policy request",
          "Customer C001 asks for a refund of order O1001; check the policy and handle it.",
          (Stage("support", "{goal}"),)),
    Shape("write", "write or edit a text from material given in the goal",
          "Rewrite this announcement to be shorter: ...", (Stage("writer", "{goal}"),)),
)  # fmt: skip


def available(agents: Sequence[str]) -> list[Shape]:
    """The shapes whose agents all exist in this run's registry."""
    names = set(agents)
    return [s for s in SHAPES if all(st.agent in names for st in s.stages)]


def build_tasks(shape: Shape, goal: str, topics: Sequence[str] = ()) -> list[Task]:
    """The tasks of ``shape`` for ``goal``; each stage depends on every task of the one before."""
    tasks: list[Task] = []
    previous: list[str] = []
    for stage in shape.stages:
        subjects = [t.strip() for t in topics if t.strip()][:3] if stage.parallel else [""]
        current = []
        for topic in subjects or [goal]:
            task_id = f"t{len(tasks) + 1}"
            text = stage.instruction.format(goal=goal.strip(), topic=topic or goal.strip())
            tasks.append(
                Task(id=task_id, agent=stage.agent, instruction=text, depends_on=list(previous))
            )
            current.append(task_id)
        previous = current
    return tasks


def by_name(name: str) -> Shape:
    return next(s for s in SHAPES if s.name == name)


_IDS = re.compile(r"\b(?:C\d{3}|O\d{4}|T\d{3})\b")
_CUES = {
    "code": r"\b(python|function|script|code|implement\w*|program|module|pytest|unit tests?)\b",
    "data": r"\.(csv|sqlite|db)\b|\b(data ?set|data file|spreadsheet)\b",
    "review": r"\b(review\w*|check (?:it|them|the (?:code|text|draft|explainer|report)))\b",
    "docs": r"\b(readme|documentation|document(?:ing)? (?:it|how)|docs section|usage section)\b",
    "text": r"\b(report|faq|recommendation|explainer|comparison|one-page|article|e-?mail|"
    r"announcement|write-up|summary of|side-by-side|blog post|letter)\b",
    "parallel": r"\b(in parallel|independent|each of|separately|two research|both)\b",
}
CUES = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in _CUES.items()}
"""Cue phrases the shape is read from (:func:`classify`)."""


def classify(goal: str, shapes: Sequence[Shape]) -> Shape | None:
    """The shape for ``goal`` from its cues, among ``shapes``; None when none is available.

    Customer, order and ticket ids make it a support request; code words a coding goal (with
    a review or documentation stage when asked for); data files an analysis; otherwise a
    knowledge-base question, with a writing stage when a text is asked for (and parallel
    research when the goal asks for separate subjects), and a review stage when asked for.
    """
    has = {name: bool(rx.search(goal)) for name, rx in CUES.items()}
    if _IDS.search(goal):
        order = ["support"]
    elif has["code"]:
        order = (
            (["code_then_review"] if has["review"] else [])
            + (["code_then_docs"] if has["docs"] or has["text"] else [])
            + ["code"]
        )
    elif has["data"]:
        order = (["analyze_then_write"] if has["text"] else []) + ["analyze"]
    elif has["text"] or has["docs"]:
        if has["review"]:
            order = ["research_write_review", "research_then_write"]
        elif has["parallel"]:
            order = ["parallel_research_then_write", "research_then_write"]
        else:
            order = ["research_then_write"]
        order.append("research")
    else:
        order = ["research", "write"]
    names = {s.name: s for s in shapes}
    return next((names[n] for n in order if n in names), None)


class Topics(BaseModel):
    """The separate subjects to research for the goal."""

    topics: list[str] = Field(
        min_length=2,
        max_length=3,
        description="Two or three short subjects, one per research task.",
    )
