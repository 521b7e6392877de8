"""Project plans: when a goal asks for code in several modules, the model designs the module
layout and code holds the design to the goal.

Two model judgments, each in a form a small model answers reliably:

- **is it a project?** a choice between two labelled options, one module or several (read
  as likelihoods), after worked examples from the plan library — goals whose plans split
  the code into modules, and goals whose plans did not;
- **the design**: a structured reply (JSON schema, decoded under a grammar) naming each
  module's file, purpose, what it defines (signatures) and which other modules it imports,
  after the library's nearest worked designs.

Code then checks the design (:func:`design_problems`): files are distinct module names,
imports point at modules of the design and form no cycle, every entry is a class or a
signature, and every name and file the goal states is in it with the parameters the goal
gives. A design that fails is asked again with the problem shown; one that fails twice is
dropped, and the goal gets the one-module plan. :func:`module_order` lays the modules out so
a module is written after the modules it imports (its tests import them for real); modules
that import nothing of each other are written in parallel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.flows.code_spec import ModuleBrief, Signature, parse_define, spec_of
from core.models import StructuredOutputError, ainvoke_structured
from core.models.judgment import Example, Judgment, Option, choose
from graph.planning import prompts
from graph.planning.library import PlanExample, PlanLibrary

__all__ = [
    "LAYOUTS",
    "LAYOUT_QUESTION",
    "ModulePlan",
    "Project",
    "ProjectDesign",
    "briefs",
    "design_problems",
    "judge_project",
    "layout",
    "module_order",
    "project_bar",
]

LAYOUT_QUESTION = "How many Python files does the goal ask for?"
LAYOUTS = (
    Option("one", "One module (one .py file)"),
    Option("several", "Two or more modules (.py files)"),
)
"""The project question as two labelled options. Measured against a yes/no question on the
same goals (``benchmarks/project_judgment.py``; docs/benchmarks.md, "Project plans"): the
small model leans to "yes" on the yes/no form (one-module goals up to 0.80, projects from
0.65), while the options separate them (one-module goals at most 0.47, projects from 0.59)."""
EXAMPLES = 8
"""Worked examples shown for the question."""
DESIGN_EXAMPLES = 2
"""Worked designs shown before the goal."""
PROJECT_LIKELIHOOD = 0.5
"""The probability of "several" from which a goal is planned as a project."""
NAMED_FILES_LIKELIHOOD = 0.35
"""The bar when the goal itself names two or more module files: a stated fact backs it."""
ONE_FILE_LIKELIHOOD = 0.75
"""The bar when the goal names exactly one module file: the stated file speaks against a
project (a goal that looks something up *then* writes the code reads as two steps to the
model, p up to 0.61, though it asks for one file)."""


def project_bar(goal: str) -> float:
    """The probability of "several" from which ``goal`` is planned as a project: lower when
    the goal names two or more ``.py`` files, higher when it names exactly one."""
    named = len(spec_of(goal).files)
    return NAMED_FILES_LIKELIHOOD if named >= 2 else ONE_FILE_LIKELIHOOD if named == 1 else PROJECT_LIKELIHOOD
MAX_MODULES = 4


class ModulePlan(BaseModel):
    """One module of a project's design."""

    file: str = Field(
        pattern=r"^[a-z_][a-z0-9_]{0,40}\.py$", description="The module's file name, e.g. shapes.py."
    )
    purpose: str = Field(max_length=200, description="One sentence: what the module is for.")
    defines: list[str] = Field(
        min_length=1,
        max_length=6,
        description=(
            "What the module defines, each a class (class Shape), a function signature "
            "(area(width: float, height: float) -> float) or a method (Shape.scale(factor: float))."
        ),
    )
    uses: list[str] = Field(
        default_factory=list,
        max_length=3,
        description="File names of the other modules of this design that it imports from.",
    )


class ProjectDesign(BaseModel):
    """A project's module layout: the files and the interfaces between them."""

    modules: list[ModulePlan] = Field(
        min_length=2, max_length=MAX_MODULES, description="The modules, two to four."
    )


@dataclass(frozen=True)
class Project:
    """What the planner decided about a goal's code."""

    design: ProjectDesign | None
    """The checked design (None: one module)."""
    notes: tuple[str, ...] = ()
    """What happened on the way (for the plan version's reason)."""


def _has_project(example: PlanExample) -> bool:
    return example.is_project


async def judge_project(
    model: BaseChatModel, goal: str, library: PlanLibrary, agents: Sequence[str]
) -> Project:
    """Whether ``goal`` asks for several modules and, if so, their checked design."""
    pool = PlanLibrary([e for e in library.examples if "coder" in e.needs])
    verdict = await layout(model, goal, pool, agents)
    if verdict.p("several") < project_bar(goal):
        return Project(None)
    messages: list[BaseMessage] = [SystemMessage(prompts.PROJECT_DESIGN)]
    for e in reversed(pool.nearest_designs(goal, DESIGN_EXAMPLES)):
        messages.append(HumanMessage(f"Goal: {e.goal}"))
        messages.append(AIMessage(json.dumps({"modules": list(e.modules)})))
    messages.append(HumanMessage(f"Goal: {goal.strip()}"))
    try:
        result = await ainvoke_structured(
            model, ProjectDesign, messages, attempts=2,
            check=lambda design: design_problems(normalized(design), goal),
        )  # fmt: skip
    except StructuredOutputError as err:
        return Project(None, (f"one module: no usable design ({str(err).splitlines()[0]})",))
    design = normalized(result.value)
    files = ", ".join(m.file for m in design.modules)
    return Project(design, (f"project of {len(design.modules)} modules ({files})",))


_DEF_PREFIX = re.compile(r"^(?:async\s+)?def\s+")
_ATTRIBUTE = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*\s*:\s*\S")
"""``Money.amount: float``: a class's attribute, stated for the coder, not a signature."""


def normalized(design: ProjectDesign) -> ProjectDesign:
    """``design`` with its entries in the brief's forms: ``def f(x)`` -> ``f(x)``, and a
    ``def m(self, …)`` listed under ``class C`` -> ``C.m(…)`` (how models often write it)."""
    modules = []
    for module in design.modules:
        owner = ""
        entries = []
        for entry in module.defines:
            text = _DEF_PREFIX.sub("", entry.strip())
            parsed = parse_define(text)
            if isinstance(parsed, str):
                owner = parsed
            elif isinstance(parsed, Signature) and not parsed.owner and owner and (
                text.split("(", 1)[1].lstrip().startswith(("self", "cls"))
            ):
                text = f"{owner}.{text}"
            entries.append(text)
        modules.append(module.model_copy(update={"defines": entries}))
    return ProjectDesign(modules=modules)


async def layout(
    model: BaseChatModel, goal: str, pool: PlanLibrary, agents: Sequence[str]
) -> Judgment:
    """The model's answer to :data:`LAYOUT_QUESTION` (option keys ``one``/``several``), after
    worked examples from ``pool``, about half of them projects."""
    examples = [
        Example(f"Goal: {e.goal}\nQuestion: {LAYOUT_QUESTION}", "several" if e.is_project else "one")
        for e in pool.balanced(goal, _has_project, EXAMPLES, agents)
    ]
    return await choose(
        model, prompts.OPTION_SYSTEM, f"Goal: {goal.strip()}\nQuestion: {LAYOUT_QUESTION}",
        LAYOUTS, examples=examples, default="one",
    )  # fmt: skip


def design_problems(design: ProjectDesign, goal: str) -> str | None:
    """What is wrong with ``design`` for ``goal`` (None when nothing is)."""
    files = [m.file for m in design.modules]
    found: list[str] = []
    if len(set(files)) < len(files):
        found.append("two modules have the same file name")
    if any(f.startswith("test") for f in files):
        found.append("test files are not modules: every module's tests are written with it")
    defined: dict[str, Signature] = {}
    classes: set[str] = set()
    methods: set[str] = set()
    for module in design.modules:
        for entry in module.defines:
            parsed = parse_define(entry)
            if parsed is None and _ATTRIBUTE.match(entry.strip()):
                continue
            if parsed is None:
                found.append(f"{module.file}: {entry!r} is not a class or a signature")
            elif isinstance(parsed, str):
                classes.add(parsed)
            else:
                if parsed.owner:
                    classes.add(parsed.owner)
                    methods.add(parsed.name)
                else:
                    defined[parsed.name] = parsed
        for used in module.uses:
            if used == module.file or used not in files:
                found.append(f"{module.file} uses {used}, which is not another module of the design")
    if not found and module_order(design) is None:
        found.append("the modules import each other in a cycle")
    stated = spec_of(goal)
    for file in stated.files:
        if file not in files:
            found.append(f"the goal names {file}, which the design lacks")
    for cls in stated.classes:
        if cls not in classes:
            found.append(f"the goal asks for the class {cls}, which no module defines")
    for want in stated.signatures:
        if want.owner:
            continue
        got = defined.get(want.name)
        # "A Stack class with push(item)" reads as a function push; a method satisfies it.
        if got is None and want.name not in classes | methods:
            found.append(f"the goal asks for {want.text()}, which no module defines")
        elif got is not None and got.params != want.params:
            found.append(f"the goal states {want.text()}; the design has {got.text()}")
    return "; ".join(found) or None


def module_order(design: ProjectDesign) -> list[ModulePlan] | None:
    """The modules with each after the ones it uses (design order among equals); None when
    they import each other in a cycle."""
    placed: list[ModulePlan] = []
    left = list(design.modules)
    while left:
        ready = [m for m in left if set(m.uses) <= {p.file for p in placed}]
        if not ready:
            return None
        placed.append(ready[0])
        left.remove(ready[0])
    return placed


def briefs(design: ProjectDesign) -> list[ModuleBrief]:
    """The coder briefs of a checked design, in :func:`module_order`."""
    ordered = module_order(design) or list(design.modules)
    by_file = {m.file: m for m in design.modules}
    return [
        ModuleBrief(
            m.file, tuple(d.strip() for d in m.defines), m.purpose.strip(),
            tuple((u, tuple(by_file[u].defines)) for u in m.uses if u in by_file),
        )
        for m in ordered
    ]
