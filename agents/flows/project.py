"""A project's integration stage: the task that follows a project plan's module tasks.

The planner states the checked design in the task's instruction (:func:`integration_instruction`);
the coder's integration step reads it back (:func:`design_of`) and, with code only:

- writes the design where people and tools read it: ``design.json`` (machine-readable) and
  ``DESIGN.md``;
- checks every module against its interface (the file exists, it defines what the design
  says with those parameters) and runs every module's tests together in the sandbox — a
  module's tests import the modules it uses for real, so this is the integration run;
- sends a module that fails back to the coder's module flow, which starts from the kept
  files and is shown the failing output (:func:`failing_modules` says which module a failure
  points at);
- writes ``README.md`` from the artifacts: what each module does, how to run the tests, and
  the outcome of the last run.

The instruction carries the design, not a reference to planner state, so a plan edited at
review or replayed from a checkpoint integrates exactly what it states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from agents.flows.code_spec import ModuleBrief

__all__ = [
    "DESIGN_FILES",
    "INTEGRATE_HEAD",
    "ProjectDesignError",
    "design_json",
    "design_markdown",
    "design_of",
    "failing_modules",
    "integration_instruction",
    "readme",
    "test_file_of",
]

INTEGRATE_HEAD = (
    "Integrate the project: write its design (design.json, DESIGN.md) and README.md, and run "
    "every module's tests together; a module that fails goes back to the coder."
)
DESIGN = "Design (design.json):"
GOAL = "The project's goal:"
DESIGN_FILES = ("design.json", "DESIGN.md", "README.md")
"""What the integration step writes besides the modules' own files."""


class ProjectDesignError(ValueError):
    """An integration task whose stated design cannot be read (e.g. edited by hand)."""


def integration_instruction(modules: Sequence[ModuleBrief], goal: str) -> str:
    """The instruction of a project's integration task: the design as JSON, then the goal."""
    return "\n".join([INTEGRATE_HEAD, "", DESIGN, design_json(modules), "", GOAL, goal.strip()])


def design_of(instruction: str) -> tuple[list[ModuleBrief], str] | None:
    """The modules and goal an integration task states; None for any other task.

    Raises :class:`ProjectDesignError` when the instruction is an integration task's but its
    design is not a list of modules (file, purpose, defines, uses)."""
    text = instruction.strip()
    if not text.startswith(INTEGRATE_HEAD) or DESIGN not in text:
        return None
    body, _, goal = text.split(DESIGN, 1)[1].partition(f"\n{GOAL}")
    try:
        raw = json.loads(body.strip())
        entries = raw["modules"] if isinstance(raw, dict) else raw
        if not isinstance(entries, list) or not entries:
            raise TypeError("no modules")
        files = {str(m["file"]) for m in entries}
        by_file = {str(m["file"]): tuple(str(d) for d in m["defines"]) for m in entries}
        modules = [
            ModuleBrief(
                file=str(m["file"]),
                defines=tuple(str(d) for d in m["defines"]),
                purpose=str(m.get("purpose") or ""),
                uses=tuple((u, by_file[u]) for u in m.get("uses") or () if u in files),
            )
            for m in entries
        ]
    except (ValueError, TypeError, KeyError) as err:
        raise ProjectDesignError(f"the integration task's design is not a list of modules: {err}") from None
    if any(not re.fullmatch(r"[A-Za-z_]\w*\.py", m.file) for m in modules):
        raise ProjectDesignError("the integration task's design names a file that is not a module (name.py)")
    return modules, goal.strip()


def design_json(modules: Sequence[ModuleBrief]) -> str:
    """The design as ``design.json`` holds it: ``{"modules": [{file, purpose, defines, uses}]}``."""
    entries = [
        {"file": m.file, "purpose": m.purpose, "defines": list(m.defines), "uses": [f for f, _ in m.uses]}
        for m in modules
    ]
    return json.dumps({"modules": entries}, indent=2)


def _module_lines(module: ModuleBrief) -> list[str]:
    lines = [f"### `{module.file}`", ""]
    if module.purpose:
        lines += [module.purpose, ""]
    lines += [f"- `{d}`" for d in module.defines]
    if module.uses:
        lines += ["", "Imports from: " + ", ".join(f"`{f}`" for f, _ in module.uses)]
    return [*lines, ""]


def design_markdown(modules: Sequence[ModuleBrief], goal: str) -> str:
    """``DESIGN.md``: the goal, the module layout and each module's interface."""
    order = " → ".join(m.file for m in modules)
    lines = ["# Design", "", "## Goal", "", goal.strip(), "", "## Modules", "",
             f"Written in this order (a module after the modules it imports): {order}.", ""]  # fmt: skip
    for module in modules:
        lines += _module_lines(module)
    lines += ["The machine-readable form of this design is `design.json`.", ""]
    return "\n".join(lines)


def readme(
    modules: Sequence[ModuleBrief],
    goal: str,
    outcome: str,
    present: Sequence[str],
) -> str:
    """``README.md``: what the project is, what each module does, how to run its tests and
    the outcome of the integration run (``outcome``, one line). ``present``: the files that
    exist in the workspace (a module the coder could not write is listed as missing)."""
    lines = ["# Project", "", goal.strip(), "", "## Modules", ""]
    for module in modules:
        state = "" if module.file in present else " (missing: not written)"
        lines.append(f"- `{module.file}`{state}: {module.purpose or 'see DESIGN.md'}")
    tests = [test_file_of(m.file) for m in modules if test_file_of(m.file) in present]
    lines += ["", "## Run the tests", "", "```sh", "python -m pytest -q " + " ".join(tests), "```",
              "", "## Last integration run", "", outcome.strip(), "",
              "The design (interfaces between the modules) is in `DESIGN.md` and `design.json`.", ""]  # fmt: skip
    return "\n".join(lines)


def test_file_of(module_file: str) -> str:
    """The test file the coder writes for ``module_file``."""
    return f"test_{module_file}"


_FAILED = re.compile(r"^(?:FAILED|ERROR)\s+(?:collecting\s+)?([A-Za-z_][\w/]*\.py)", re.MULTILINE)


def failing_modules(output: str, modules: Sequence[ModuleBrief]) -> list[str]:
    """The modules whose tests failed in a pytest run's ``output`` (``-q`` short summary:
    ``FAILED test_x.py::test_y``, ``ERROR test_x.py``), in design order."""
    failed = {match.group(1).rsplit("/", 1)[-1] for match in _FAILED.finditer(output)}
    return [m.file for m in modules if test_file_of(m.file) in failed]
