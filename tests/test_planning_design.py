"""Project plans: the model's module design, held to the goal by code, laid out as one coder
task per module (graph/planning/design.py, compose.py; the brief the coder reads back)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from agents import AgentRegistry
from agents.flows.code_spec import ModuleBrief, module_brief, module_instruction, task_spec
from agents.flows.project import design_of
from core.models import TestChatModel
from core.models.factory import use_model
from core.settings import Settings
from graph.planning.compose import compose
from graph.planning.design import (
    ModulePlan,
    ProjectDesign,
    briefs,
    design_problems,
    module_order,
    project_bar,
)
from graph.planning.library import LIBRARY_FILE, library_for
from graph.planning.planner import learn_from, plan_by_judgment

GOAL = ("Two modules: units.py with to_km(miles: float) -> float, and trip.py with a class Trip "
        "whose add(miles) records a leg and total_km() -> float sums them using to_km.")


def design(*modules: tuple[str, list[str], list[str]]) -> ProjectDesign:
    return ProjectDesign(modules=[ModulePlan(file=f, purpose="p", defines=d, uses=u) for f, d, u in modules])


GOOD = design(
    ("trip.py", ["class Trip", "Trip.add(miles: float)", "Trip.total_km() -> float"], ["units.py"]),
    ("units.py", ["to_km(miles: float) -> float"], []),
)


def test_a_design_that_meets_the_goal_passes_and_is_ordered_by_imports() -> None:
    assert design_problems(GOOD, GOAL) is None  # "add(miles)" in the goal is Trip's method
    assert [m.file for m in module_order(GOOD) or []] == ["units.py", "trip.py"]
    _, second = briefs(GOOD)
    assert second.uses == (("units.py", ("to_km(miles: float) -> float",)),)


def test_design_problems_name_what_the_goal_states_and_the_design_lacks() -> None:
    renamed = design(("units.py", ["miles_to_km(m: float) -> float"], []), ("trip.py", ["class Trip"], ["units.py"]))
    problem = design_problems(renamed, GOAL) or ""
    assert "to_km(miles), which no module defines" in problem
    wrong_params = design(("units.py", ["to_km(value: float) -> float"], []), ("trip.py", ["class Trip"], ["units.py"]))
    assert "the goal states to_km(miles); the design has to_km(value)" in (design_problems(wrong_params, GOAL) or "")
    one_file = design(("units.py", ["to_km(miles: float)"], []), ("helpers.py", ["class Trip"], []))
    assert "the goal names trip.py, which the design lacks" in (design_problems(one_file, GOAL) or "")
    cycle = design(("a.py", ["f(x)"], ["b.py"]), ("b.py", ["g(x)"], ["a.py"]))
    assert "cycle" in (design_problems(cycle, "Write f and g.") or "")
    odd = design(("a.py", ["print('hi')"], ["c.py"]), ("test_a.py", ["test_f()"], []))
    found = design_problems(odd, "Write f.") or ""
    assert "not a class or a signature" in found and "c.py, which is not another module" in found
    assert "test files are not modules" in found


def test_modules_become_coder_tasks_after_the_modules_they_import_and_before_writer_and_reviewer() -> None:
    modules = briefs(design(("a.py", ["f(x)"], []), ("b.py", ["g(x)"], []), ("c.py", ["h(x)"], ["a.py", "b.py"])))
    tasks = compose("Build it, document it and review it.", {"coder", "writer", "reviewer"}, (), modules)
    assert [(t.id, t.agent, t.depends_on) for t in tasks] == [
        ("t1", "coder", []), ("t2", "coder", []),  # independent modules: written in parallel
        ("t3", "coder", ["t1", "t2"]),
        ("t4", "coder", ["t1", "t2", "t3"]),  # integration: every module's tests together
        ("t5", "writer", ["t1", "t2", "t3", "t4"]), ("t6", "reviewer", ["t5"]),
    ]  # fmt: skip
    reviewed = compose("Build and review.", {"researcher", "coder", "reviewer"}, (), modules)
    assert reviewed[1].depends_on == ["t1"] and reviewed[3].depends_on == ["t1", "t2", "t3"]
    assert reviewed[4].depends_on == ["t1", "t2", "t3", "t4"]
    assert reviewed[-1].depends_on == ["t5"]  # the reviewer sees the integrated project


def test_the_coder_reads_its_module_brief_back_with_the_goals_examples_of_its_names() -> None:
    goal = GOAL + " For example to_km(10) -> 16.09344."
    (units, trip) = briefs(GOOD)
    text = module_instruction(units, goal)
    assert module_brief(text) == units
    spec = task_spec(text, goal)
    assert spec.file == "units.py" and spec.names == ["to_km"] and [e.call for e in spec.examples] == ["to_km(10)"]
    trip_spec = task_spec(module_instruction(trip, goal), goal)
    # The module it imports is context, not its own interface; the goal's other names neither.
    assert trip_spec.names == ["Trip"] and {s.name for s in trip_spec.signatures} == {"add", "total_km"}
    assert trip_spec.examples == []
    assert module_brief("Write the code and its tests: " + goal) is None


def scripted(project: bool, reply: dict[str, Any], seen: list[list[BaseMessage]]) -> TestChatModel:
    def record(messages: list[BaseMessage]) -> dict[str, Any]:
        seen.append(messages)
        return reply

    model = TestChatModel(responses={"Needs": {"needs": ["coder"]}, "ProjectDesign": record})
    model.text = "B" if project else "A"  # the options: A one module, B several
    return model


def test_the_judged_planner_plans_a_project_when_the_model_says_so_and_the_design_checks(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    registry = AgentRegistry.builtin()
    seen: list[list[BaseMessage]] = []
    with use_model(scripted(True, GOOD.model_dump(), seen)):
        check, how = asyncio.run(plan_by_judgment(GOAL, settings, registry, library_for(settings)))
    assert [(t.agent, t.depends_on) for t in check.tasks] == [
        ("coder", []), ("coder", ["t1"]), ("coder", ["t1", "t2"])
    ]
    assert module_brief(check.tasks[1].instruction) == briefs(GOOD)[1]
    assert design_of(check.tasks[2].instruction) == (briefs(GOOD), GOAL)
    assert "project of 2 modules (trip.py, units.py)" in how
    # The nearest worked designs of the library come before the goal.
    assert any('"modules"' in str(m.content) for m in seen[0][:-1])

    bad = design(("units.py", ["km(x)"], []), ("other.py", ["class Trip"], []))
    seen.clear()
    with use_model(scripted(True, bad.model_dump(), seen)):
        check, how = asyncio.run(plan_by_judgment(GOAL, settings, registry, library_for(settings)))
    assert [t.agent for t in check.tasks] == ["coder"] and "no usable design" in how
    assert "the goal names trip.py, which the design lacks" in str(seen[-1][-1].content)  # shown on retry

    with use_model(scripted(False, GOOD.model_dump(), seen)):
        check, _ = asyncio.run(plan_by_judgment(GOAL, settings, registry, library_for(settings)))
    assert [t.agent for t in check.tasks] == ["coder"]  # "no": the one-module plan


def test_an_approved_project_plan_teaches_its_design_to_the_library(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    tasks = [t.model_dump() for t in compose(GOAL, {"coder"}, (), briefs(GOOD))]
    asyncio.run(learn_from({"goal": GOAL, "tasks": tasks, "plan_approved": True}, settings))  # type: ignore[typeddict-item]
    stored = json.loads((tmp_path / LIBRARY_FILE).read_text().splitlines()[0])
    assert [m["file"] for m in stored["modules"]] == ["units.py", "trip.py"]
    library = library_for(settings)
    nearest = library.nearest_designs("Two modules: distance.py and journey.py with a Trip class.", 1)[0]
    assert nearest.source == "approved" and nearest.is_project
    assert ModuleBrief("trip.py", tuple(nearest.modules[1]["defines"])).defines[0] == "class Trip"


def test_designs_written_as_code_are_read_in_the_briefs_forms() -> None:
    from graph.planning.design import normalized

    written = design(
        ("graph.py", ["class Graph", "def add_edge(self, u: int, v: int) -> None", "Graph.size: int"], []),
        ("paths.py", ["def shortest_path(graph, start, end)"], ["graph.py"]),
    )
    fixed = normalized(written)
    assert [m.defines for m in fixed.modules] == [
        ["class Graph", "Graph.add_edge(self, u: int, v: int) -> None", "Graph.size: int"],
        ["shortest_path(graph, start, end)"],
    ]
    # An attribute is context for the coder, not a signature to check.
    assert design_problems(fixed, "A Graph class with add_edge(u, v); shortest_path(graph, start, end).") is None
    assert "is not a class or a signature" in (design_problems(written, "Write it.") or "")


def test_the_files_a_goal_names_move_the_bar_for_a_project() -> None:
    assert project_bar("Two modules: a.py with f(x) and b.py with g(x).") < project_bar("A small library of two parts.")
    assert project_bar("Look the rule up, then write can_go(x) in rules.py.") > project_bar("A small library of two parts.")
