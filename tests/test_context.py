"""What a worker sees of its dependencies: fitted to the budget, sources never cut."""

from __future__ import annotations

from agents.flows.common import sections_of
from graph.context import dependency_context
from graph.state import Task, TaskRecord


def test_a_tight_budget_cuts_the_text_but_keeps_every_source_whole() -> None:
    cites = [f"[doc-{i}.md#A heading of some length L{i}-{i + 5}]" for i in range(4)]
    results: dict[str, TaskRecord] = {
        dep: {"status": "done", "output": "word " * 2000, "citations": cites, "task": {"agent": "researcher"}}
        for dep in ("t1", "t2")
    }
    task = Task(id="t3", agent="writer", instruction="w", depends_on=["t1", "t2"])
    context = dependency_context(task, results, budget_tokens=300)
    sections = sections_of(context)
    assert [s.task_id for s in sections] == ["t1", "t2"]
    for section in sections:
        assert section.sources == cites  # whole, in order: none cut mid-way
        assert len(section.body) < 2000 * 5  # the text was cut to fit
