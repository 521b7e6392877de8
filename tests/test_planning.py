"""Planning: composition by code, the plan library, the judged planner and learning."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from agents import AgentRegistry
from agents.profile import profile_for
from core.models import TestChatModel
from core.settings import Settings
from graph.assessment import wants_assessment
from graph.planning import find_cycle
from graph.planning.compose import compose
from graph.planning.judged import judge_needs
from graph.planning.library import LIBRARY_FILE, PlanLibrary, library_for
from graph.planning.planner import learn_from, plan_by_judgment


def plan_of(needs: set[str], topics: tuple[str, ...] = ()) -> list[tuple[str, str, list[str]]]:
    return [(t.id, t.agent, t.depends_on) for t in compose("G", needs, topics)]


# -- composition: every combination of specialists gets stages in the order results flow --


def test_one_specialist_is_one_task_with_the_goal_as_instruction() -> None:
    for agent in ("coder", "analyst", "writer", "reviewer", "support"):
        (task,) = compose("Do the thing.", {agent})
        assert (task.agent, task.instruction, task.depends_on) == (agent, "Do the thing.", [])
    (task,) = compose("What is X?", {"researcher"})
    assert task.instruction.startswith("Answer from the knowledge base") and "What is X?" in task.instruction


def test_look_up_then_implement_feeds_the_facts_to_the_coder() -> None:
    assert plan_of({"researcher", "coder"}) == [("t1", "researcher", []), ("t2", "coder", ["t1"])]
    coder = compose("Implement the rule.", {"researcher", "coder"})[1]
    assert "do not invent rules" in coder.instruction


def test_stages_compose_in_the_order_results_flow() -> None:
    assert plan_of({"analyst", "writer"}) == [("t1", "analyst", []), ("t2", "writer", ["t1"])]
    assert plan_of({"researcher", "analyst", "writer"}) == [
        ("t1", "researcher", []), ("t2", "analyst", []), ("t3", "writer", ["t1", "t2"])
    ]  # fmt: skip
    assert plan_of({"coder", "writer", "reviewer"}) == [
        ("t1", "coder", []), ("t2", "writer", ["t1"]), ("t3", "reviewer", ["t2"])
    ]  # fmt: skip
    review = compose("G", {"coder", "reviewer"})[1]
    assert review.instruction.startswith("Review the code")
    assert compose("G", {"researcher", "writer", "reviewer"})[2].instruction.startswith("Check the written text")


def test_separate_subjects_are_researched_in_parallel_when_a_later_stage_combines_them() -> None:
    tasks = compose("Compare them.", {"researcher", "writer"}, ("SQLite commits", "PostgreSQL commits"))
    assert [(t.id, t.agent, t.depends_on) for t in tasks] == [
        ("t1", "researcher", []), ("t2", "researcher", []), ("t3", "writer", ["t1", "t2"])
    ]  # fmt: skip
    assert "SQLite commits" in tasks[0].instruction and find_cycle(tasks) is None
    # Nothing combines them: one research task answers the question.
    assert plan_of({"researcher"}, ("a", "b")) == [("t1", "researcher", [])]


def test_a_support_request_is_one_support_task_and_custom_agents_join_the_gather_stage() -> None:
    assert plan_of({"support", "writer"}) == [("t1", "support", [])]
    assert plan_of({"translator", "writer"}) == [("t1", "translator", []), ("t2", "writer", ["t1"])]
    with pytest.raises(ValueError):
        compose("G", set())


# -- the plan library ----------------------------------------------------------------------


def test_the_seed_library_covers_every_builtin_agent_and_quotes_no_dataset_goal(tmp_path: Path) -> None:
    library = library_for(Settings(data_dir=tmp_path))
    assert library.problems == []
    assert len(library.examples) >= 40
    used = set().union(*(e.needs for e in library.examples))
    assert used == set(AgentRegistry.builtin().names())
    goals = set()
    for path in (Path(__file__).parent.parent / "evals" / "datasets").glob("*.jsonl"):
        goals |= {json.loads(line)["inputs"]["goal"] for line in path.read_text().splitlines() if line.strip()}
    assert not goals & {e.goal for e in library.examples}


def test_nearest_and_balanced_examples(tmp_path: Path) -> None:
    library = library_for(Settings(data_dir=tmp_path))
    near = library.nearest("fix this python function, it crashes", 3)
    assert near and all("coder" in e.needs for e in near[:2])
    only = library.nearest("write a report", 50, agents=["writer"])
    assert only and all(e.needs == {"writer"} for e in only)
    picked = library.balanced("refund order O1 for C1", lambda e: "support" in e.needs, 6)
    assert sum("support" in e.needs for e in picked) == 3 and len(picked) == 6


def test_approved_plans_are_stored_once_and_come_first(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    library = library_for(settings)
    tasks = [{"id": "t1", "agent": "writer", "instruction": "x"},
             {"id": "t2", "agent": "reviewer", "instruction": "y", "depends_on": ["t1"]}]
    goal = "Draft the quarterly newsletter and have it proofread"
    assert library.record(goal, tasks) is not None
    assert library.record(goal, tasks) is None  # the same plan for the same goal: once
    stored = (tmp_path / LIBRARY_FILE).read_text().splitlines()
    assert len(stored) == 1 and "instruction" not in stored[0]  # the shape, not the text
    fresh = library_for(settings)  # another process reads it back
    first = fresh.nearest("Draft the monthly newsletter and get it proofread", 1)[0]
    assert (first.source, first.needs) == ("approved", {"writer", "reviewer"})


def test_bad_library_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    user = tmp_path / "mine.jsonl"
    user.write_text('{"goal": "Translate the notes", "needs": ["writer"]}\nnot json\n{"goal": ""}\n')
    library = library_for(Settings(data_dir=tmp_path, plan_examples_file=user))
    assert [e.goal for e in library.examples if e.source == "user"] == ["Translate the notes"]
    assert len(library.problems) == 2 and "mine.jsonl:2" in library.problems[0]


# -- the judged planner ----------------------------------------------------------------------


def scripted(needs: list[str], seen: list[list[BaseMessage]]) -> TestChatModel:
    def answer(messages: list[BaseMessage]) -> dict[str, Any]:
        seen.append(list(messages))
        return {"needs": needs}

    return TestChatModel(responses={"Needs": answer, "Topics": {"topics": ["first", "second"]}})


def test_the_models_judgment_decides_the_plan_and_sees_the_nearest_examples_last(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    registry = AgentRegistry.builtin()
    library = library_for(settings)
    seen: list[list[BaseMessage]] = []
    goal = "Look the retention period up in our docs and write keep_until(date) from it."
    needs = asyncio.run(judge_needs(scripted(["researcher", "coder"], seen), goal, registry, library))
    assert needs.agents == {"researcher", "coder"} and needs.topics == ()
    prompt = seen[0]
    assert str(prompt[-1].content) == f"Goal: {goal}"
    nearest = library.nearest(goal, 1, registry.names())[0]
    assert str(prompt[-3].content) == f"Goal: {nearest.goal}"  # the nearest example, last
    assert json.loads(str(prompt[-2].content))["needs"]


def test_a_judged_plan_with_separate_subjects_researches_them_in_parallel(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    registry = AgentRegistry.builtin()
    seen: list[list[BaseMessage]] = []
    model = scripted(["researcher", "writer"], seen)
    model.script = []  # the subjects question is answered from the reply text: B, "several"
    model.text = "B"
    from core.models.factory import use_model

    with use_model(model):
        check, how = asyncio.run(plan_by_judgment("Compare A and B in a table.", settings, registry, library_for(settings)))
    assert check.error is None
    assert [(t.agent, t.depends_on) for t in check.tasks] == [
        ("researcher", []), ("researcher", []), ("writer", ["t1", "t2"])
    ]  # fmt: skip
    assert how.startswith("planned by judgment (researcher, researcher, writer)")


def test_a_completed_run_whose_plan_a_human_approved_teaches_the_library(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    tasks = [{"id": "t1", "agent": "writer", "instruction": "x", "depends_on": []},
             {"id": "t2", "agent": "reviewer", "instruction": "y", "depends_on": ["t1"]}]
    goal = "Write the press release for the launch and have it proofread."
    asyncio.run(learn_from({"goal": goal, "tasks": tasks}, settings))  # type: ignore[typeddict-item]
    assert not (tmp_path / LIBRARY_FILE).exists()  # nobody approved it: nothing learned
    asyncio.run(learn_from({"goal": goal, "tasks": tasks, "plan_approved": True}, settings))  # type: ignore[typeddict-item]
    # A similar goal now gets the approved plan as its nearest worked example.
    seen: list[list[BaseMessage]] = []
    asyncio.run(judge_needs(scripted(["writer"], seen), "Write a press release for the new office and get it proofread.",
                            AgentRegistry.builtin(), library_for(settings)))
    assert "press release for the launch" in str(seen[0][-3].content)
    assert json.loads(str(seen[0][-2].content)) == {"needs": ["writer", "reviewer"]}


def test_the_profile_of_a_small_model_plans_by_judgment_and_skips_model_assessment() -> None:
    small = profile_for(Settings(model="local"))
    assert (small.planner, small.model_assessment, small.model_synthesis) == ("judged", False, False)
    assert "coder" in small.step_roles
    capable = profile_for(Settings(model="test"))
    assert (capable.planner, capable.model_assessment) == ("free", True)
    state: Any = {"plan_versions": []}
    assert not wants_assessment(state, Settings(), small, True)
    assert wants_assessment(state, Settings(), capable, True)


def test_worker_selection_keeps_the_planned_agent_by_default() -> None:
    # Word overlap with another agent's description never moves a planned task by default.
    registry = AgentRegistry.builtin()
    settings = Settings()
    for agents in ({"researcher", "coder"}, {"analyst", "writer"}, {"coder", "reviewer"}, {"researcher", "writer"}):
        for task in compose("Look up the totals and files of our numbers, then write code and a report.", agents):
            assert registry.select(task, settings.worker_selection).name == task.agent


def test_library_is_read_again_when_its_file_changes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    before = library_for(settings)
    PlanLibrary(list(before.examples), tmp_path / LIBRARY_FILE).record("A brand new kind of goal", [{"id": "t1", "agent": "writer"}])
    after = library_for(settings)
    assert after is not before and after.examples[0].goal == "A brand new kind of goal"
