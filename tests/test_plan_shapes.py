"""Plan shapes: the planner a small model can carry (shape from cues, tasks from code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents import AgentRegistry
from core.settings import Settings
from graph import shapes
from graph.assessment import wants_assessment
from graph.planner import planned_by_shape
from graph.planning import find_cycle

ALL = shapes.available(["researcher", "coder", "analyst", "writer", "reviewer", "support"])


def shape_of(goal: str) -> str:
    found = shapes.classify(goal, ALL)
    assert found is not None
    return found.name


def test_one_specialist_goals_are_one_task() -> None:
    assert (
        shape_of(
            "Write a Python function that checks whether a string is a palindrome, with tests."
        )
        == "code"
    )
    assert shape_of("What is BM25?") == "research"
    assert shape_of("Customer C001 asks for a refund of order O1001. Handle it.") == "support"
    assert shape_of("What is the total revenue per region in sales.csv?") == "analyze"
    tasks = shapes.build_tasks(shapes.by_name("code"), "Write fizzbuzz.")
    assert [(t.id, t.agent, t.instruction, t.depends_on) for t in tasks] == [
        ("t1", "coder", "Write fizzbuzz.", [])
    ]


def test_stages_follow_the_roles() -> None:
    assert (
        shape_of("Write a script that counts words, then have the code reviewed.")
        == "code_then_review"
    )
    assert (
        shape_of("Analyze orders.csv and draft a thank-you email to the top customer.")
        == "analyze_then_write"
    )
    assert (
        shape_of("Research RAG, write an explainer, and have a reviewer check it.")
        == "research_write_review"
    )
    tasks = shapes.build_tasks(shapes.by_name("research_write_review"), "G")
    assert [(t.agent, t.depends_on) for t in tasks] == [
        ("researcher", []), ("writer", ["t1"]), ("reviewer", ["t2"])
    ]  # fmt: skip


def test_parallel_stage_gets_one_task_per_topic_and_ids_point_back() -> None:
    shape = shapes.by_name("parallel_research_then_write")
    tasks = shapes.build_tasks(shape, "Compare them.", ["SQLite commits", "PostgreSQL commits"])
    assert [(t.id, t.agent, t.depends_on) for t in tasks] == [
        ("t1", "researcher", []), ("t2", "researcher", []), ("t3", "writer", ["t1", "t2"])
    ]  # fmt: skip
    assert "SQLite commits" in tasks[0].instruction and find_cycle(tasks) is None


def test_missing_agents_remove_their_shapes() -> None:
    only = shapes.available(["researcher", "writer"])
    assert {s.name for s in only} == {
        "research",
        "research_then_write",
        "parallel_research_then_write",
        "write",
    }
    assert (
        shapes.classify("Write a Python function.", only) is None
    )  # the planner then picks one agent
    assert shapes.classify("anything", []) is None


# -- the agents a shape chose are the agents that run --------------------------------------


def dataset_goals() -> list[str]:
    """The dev-split goals: product tests may tune on dev; test and held-out goals are for
    reporting only (evals/datasets/manifest.toml)."""
    goals = []
    for path in sorted((Path(__file__).parent.parent / "evals" / "datasets").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                example = json.loads(line)
                if (example.get("metadata") or {}).get("split") == "dev":
                    goals.append(str(example["inputs"]["goal"]))
    return goals


def test_worker_selection_keeps_the_agents_of_every_shape() -> None:
    # Dispatch's default selection ("checked") re-routes a task whose instruction matches
    # another agent's capabilities much better: a report's writer stage used to run as a
    # researcher (its instruction carries the goal's research words) and a knowledge-base
    # question about refunds as support. The stage instructions say the stage's work.
    registry = AgentRegistry.builtin()
    goals = dataset_goals()
    assert len(goals) >= 30
    moved = []
    for goal in goals:
        shape = shapes.classify(goal, shapes.available(registry.names()))
        assert shape is not None
        for task in shapes.build_tasks(shape, goal, ["first subject", "second subject"]):
            chosen = registry.select(task, "checked").name
            if chosen != task.agent:
                moved.append((goal[:40], task.agent, chosen))
    assert moved == []


def test_a_knowledge_base_question_about_refunds_stays_with_the_researcher() -> None:
    registry = AgentRegistry.builtin()
    goal = "What does our knowledge base say about refunds for orders paid by bank transfer?"
    shape = shapes.classify(goal, shapes.available(registry.names()))
    assert shape is not None and shape.name == "research"  # no customer, order or ticket id
    (task,) = shapes.build_tasks(shape, goal)
    assert goal in task.instruction
    assert registry.select(task, "checked").name == "researcher"


def test_a_plan_built_from_a_shape_is_not_assessed_by_the_small_supervisor() -> None:
    settings = Settings()
    assert settings.adaptive_replanning
    task = {"id": "t1", "agent": "researcher", "instruction": "x", "depends_on": []}
    shaped: Any = {"plan_versions": [{"version": 1, "reason": "planned (shape research_then_write)", "tasks": [task]}]}  # fmt: skip
    free: Any = {"plan_versions": [{"version": 1, "reason": "planned", "tasks": [task]}]}
    edited: Any = {"plan_versions": [*shaped["plan_versions"], {"version": 2, "reason": "edited by a human", "tasks": [task]}]}  # fmt: skip
    assert planned_by_shape(shaped) and not planned_by_shape(free)
    assert not wants_assessment(shaped, settings, True)
    assert wants_assessment(free, settings, True) and wants_assessment(edited, settings, True)
