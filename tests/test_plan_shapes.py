"""Plan shapes: the planner a small model can carry (shape from cues, tasks from code)."""

from __future__ import annotations

from graph import shapes
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
