"""A project plan's integration stage: the design and README written to the workspace, every
module's tests run together in the real sandbox, and a failing module sent back to the
coder's module flow (scripted TestChatModel replies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig

from agents.flows import code_text
from agents.flows.code_spec import ModuleBrief, module_instruction
from agents.flows.project import (
    ProjectDesignError,
    design_of,
    failing_modules,
    integration_instruction,
)
from core.models import TestChatModel
from graph.planning.compose import compose
from tests.test_agents_flows import config, run_task_flow

GOAL = "Two modules: units.py with to_km(miles) and trip.py with trip_km(legs) summing to_km of each leg."
UNITS = ModuleBrief("units.py", ("to_km(miles)",), "Converts miles to kilometres.")
TRIP = ModuleBrief("trip.py", ("trip_km(legs)",), "Totals a trip.", (("units.py", ("to_km(miles)",)),))
MODULES = [UNITS, TRIP]

UNITS_CODE = "def to_km(miles):\n    return miles * 1.609344\n"
UNITS_TESTS = "import pytest\nfrom units import to_km\n\n\ndef test_to_km():\n    assert to_km(10) == pytest.approx(16.09344)\n"
TRIP_BUGGY = "from units import to_km\n\n\ndef trip_km(legs):\n    return sum(legs)\n"
TRIP_FIXED = "```python\nfrom units import to_km\n\n\ndef trip_km(legs):\n    return sum(to_km(m) for m in legs)\n```"
TRIP_TESTS = (
    "import pytest\nfrom trip import trip_km\n\n\ndef test_trip_km():\n"
    "    assert trip_km([1, 2]) == pytest.approx(3 * 1.609344)\n    assert trip_km([]) == 0\n"
    "    assert trip_km([10]) == pytest.approx(16.09344)\n"
)


def workspace_of(cfg: RunnableConfig, tmp_path: Path) -> Path:
    root = tmp_path / "workspaces" / str(cfg["configurable"]["thread_id"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def test_the_instruction_states_the_design_and_reads_back() -> None:
    text = integration_instruction(MODULES, GOAL)
    assert design_of(text) == (MODULES, GOAL)
    assert design_of("Write the code and its tests: " + GOAL) is None
    broken = text.replace('"defines"', '"defined"')
    with pytest.raises(ProjectDesignError, match="not a list of modules"):
        design_of(broken)


def test_a_failure_points_at_the_module_whose_tests_failed() -> None:
    output = (
        "..F\n=== short test summary info ===\nFAILED test_trip.py::test_trip_km - assert 3 == 4.8\n"
        "ERROR collecting sub/test_units.py\n1 failed, 2 passed"
    )
    assert failing_modules(output, MODULES) == ["units.py", "trip.py"]
    assert failing_modules("3 passed", MODULES) == []


def test_a_project_plan_ends_with_one_integration_task_after_every_module() -> None:
    tasks = compose(GOAL, {"coder", "reviewer"}, (), MODULES)
    assert [(t.agent, t.depends_on) for t in tasks] == [
        ("coder", []), ("coder", ["t1"]), ("coder", ["t1", "t2"]), ("reviewer", ["t3"])
    ]
    assert design_of(tasks[2].instruction) == (MODULES, GOAL)


async def test_integration_writes_the_design_and_readme_and_sends_a_failing_module_back(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    root = workspace_of(cfg, tmp_path)
    for name, text in {"units.py": UNITS_CODE, "test_units.py": UNITS_TESTS,
                       "trip.py": TRIP_BUGGY, "test_trip.py": TRIP_TESTS}.items():  # fmt: skip
        (root / name).write_text(text)
    seen: list[str] = []

    def answer(messages: Any) -> str:
        seen.append("\n".join(str(m.content) for m in messages))
        return TRIP_FIXED

    model = TestChatModel()
    model.text = answer
    out = await run_task_flow("coder", model, cfg, integration_instruction(MODULES, GOAL))
    assert out["error"] is None and out["verification"]["passed"] is True, out["output"]
    assert "sum(to_km(m) for m in legs)" in (root / "trip.py").read_text()
    assert (root / "units.py").read_text() == UNITS_CODE  # the passing module is left alone
    assert seen and all("trip.py" in prompt for prompt in seen)  # only trip.py went back
    assert "trip.py was sent back to the module flow (its tests failed): its tests passed" in out["output"]
    assert json.loads((root / "design.json").read_text())["modules"][1] == {
        "file": "trip.py", "purpose": "Totals a trip.", "defines": ["trip_km(legs)"], "uses": ["units.py"]
    }
    assert "`trip_km(legs)`" in (root / "DESIGN.md").read_text()
    readme = (root / "README.md").read_text()
    assert "python -m pytest -q test_units.py test_trip.py" in readme
    assert "All module tests passed together" in readme and "Totals a trip." in readme
    assert {"design.json", "DESIGN.md", "README.md", "units.py", "trip.py"} <= set(out["artifacts"])


async def test_a_module_never_written_fails_the_project_and_the_readme_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    root = workspace_of(cfg, tmp_path)
    (root / "units.py").write_text(UNITS_CODE)
    (root / "test_units.py").write_text(UNITS_TESTS)
    model = TestChatModel()
    model.text = "I cannot write that."  # no code: the module flow fails too
    out = await run_task_flow("coder", model, cfg, integration_instruction(MODULES, GOAL))
    assert out["error"] == "project integration failed: trip.py"
    assert "- trip.py: missing" in out["output"] and "- units.py: ok" in out["output"]
    assert "`trip.py` (missing: not written)" in (root / "README.md").read_text()


async def test_an_edited_integration_task_with_a_broken_design_fails_in_one_line(tmp_path: Path) -> None:
    text = integration_instruction(MODULES, GOAL).replace('"file"', '"name"')
    out = await run_task_flow("coder", TestChatModel(), config(tmp_path), text)
    assert out["error"].startswith("the integration task's design is not a list of modules")
    assert "\n" not in out["error"]


def test_a_modules_tests_may_use_the_project_modules_it_imports_and_nothing_made_up() -> None:
    tests = (
        "from trip import trip_km\nfrom units import to_km\nfrom made_up import helper\n\n"
        "def test_trip():\n    legs = [1, 2]\n    assert trip_km(legs) == to_km(1) + to_km(2)\n\n"
        "def test_helper():\n    x = helper()\n    assert trip_km([x]) == 0\n"
    )
    text, error = code_text.test_file(tests, "trip.py", ["trip_km"], siblings=["units"])
    assert error is None and "from units import to_km" in text and "def test_trip" in text
    assert "made_up" not in text and "test_helper" not in text  # an import that is not there
    _, alone = code_text.test_file(tests, "trip.py", ["trip_km"])
    assert alone is not None  # outside a project, units is not there either


async def test_a_project_modules_tests_keep_the_modules_it_uses(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    root = workspace_of(cfg, tmp_path)
    (root / "units.py").write_text(UNITS_CODE)
    tests = "```python\nfrom units import to_km\n\ndef test_trip():\n    legs = [1, 2]\n    assert trip_km(legs) == to_km(1) + to_km(2)\n```"
    replies = [TRIP_FIXED, tests, tests]

    def answer(messages: Any) -> str:
        return replies.pop(0) if replies else tests

    model = TestChatModel()
    model.text = answer
    out = await run_task_flow("coder", model, cfg, module_instruction(TRIP, GOAL))
    assert out["error"] is None, out["output"]
    assert "from units import to_km" in (root / "test_trip.py").read_text()


def test_a_module_that_defines_again_what_it_must_import_breaks_its_brief() -> None:
    from agents.flows.code_spec import brief_problems

    copied = "def to_km(miles):\n    return miles * 1.6\n\n\ndef trip_km(legs):\n    return sum(to_km(m) for m in legs)\n"
    assert brief_problems(copied, TRIP, GOAL) == ["it defines to_km again: import it from units instead"]
    assert brief_problems(TRIP_FIXED.split("```python\n")[1].split("```")[0], TRIP, GOAL) == []
    assert brief_problems("def trip_km(legs:\n", TRIP, GOAL)[0].startswith("SyntaxError")
