"""Plan validation: repairs what is unambiguous, rejects what is not, never raises."""

from __future__ import annotations

from graph.planning import find_cycle, plan_schema, validate_plan
from graph.state import Task

AGENTS = ["researcher", "coder", "writer"]


def check(tasks, **kw):
    return validate_plan(tasks, agents=AGENTS, max_tasks=kw.pop("max_tasks", 5),
                         choose_agent=lambda t: "writer", **kw)


def task(id, agent="coder", deps=(), instruction="do it"):
    return {"id": id, "agent": agent, "instruction": instruction, "depends_on": list(deps)}


def test_valid_plan_is_unchanged():
    result = check([task("t1", "researcher"), task("t2", "writer", ["t1"])])
    assert result.error is None and result.repairs == []
    assert [t.depends_on for t in result.tasks] == [[], ["t1"]]


def test_unknown_agent_is_replaced_by_a_capable_one():
    result = check([task("t1", "poet")])
    assert result.error is None
    assert result.tasks[0].agent == "writer"
    assert "unknown agent 'poet'" in result.repairs[0]


def test_dangling_and_self_dependencies_are_dropped():
    result = check([task("t1", deps=["t1", "ghost"]), task("t2", deps=["t1", "t1"])])
    assert result.error is None
    assert result.tasks[0].depends_on == [] and result.tasks[1].depends_on == ["t1"]
    assert len(result.repairs) == 2


def test_duplicate_ids_are_renamed():
    result = check([task("t1"), task("t1")])
    assert result.error is None
    assert len({t.id for t in result.tasks}) == 2


def test_cycle_is_rejected_with_the_cycle_named():
    result = check([task("a", deps=["c"]), task("b", deps=["a"]), task("c", deps=["b"])])
    assert result.error is not None and "cycle" in result.error
    assert find_cycle([Task(**task("a", deps=["a"]))]) == ["a", "a"]


def test_empty_too_large_and_malformed_plans_are_rejected():
    assert "no tasks" in (check([]).error or "")
    assert "at most 2" in (check([task("a"), task("b"), task("c")], max_tasks=2).error or "")
    assert "malformed" in (check([{"id": "a"}]).error or "")
    assert "empty instruction" in (check([task("a", instruction="  ")]).error or "")


def test_revisions_may_depend_on_done_tasks():
    result = check([task("t3", deps=["t1"])], done_ids=["t1"])
    assert result.error is None and result.tasks[0].depends_on == ["t1"]


def test_plan_schema_constrains_agents_to_the_registry():
    schema = plan_schema(AGENTS).model_json_schema()
    assert schema["$defs"]["PlannedTask"]["properties"]["agent"]["enum"] == AGENTS


def test_dependency_naming_an_agent_means_that_agents_only_task():
    result = check([task("t1", "researcher"), task("t2", "writer", ["researcher", "coder"])])
    assert result.error is None
    assert result.tasks[1].depends_on == ["t1"]  # one researcher task: unambiguous
    assert any("read as task 't1'" in r for r in result.repairs)
    assert any("dropped unknown dependency 'coder'" in r for r in result.repairs)  # no coder task
