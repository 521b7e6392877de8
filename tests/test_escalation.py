"""Escalation never reassigns a task to an agent without the tools the task needs, and the
tools' traits (what they change, what they read, what needs approval) are declared on them."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import StructuredTool

from agents import AgentRegistry
from agents.toolset import MUTATING_TOOLS, WRITE_TOOLS
from core.settings import Settings
from core.types import Task, TaskRecord
from core.usage import TaskMetrics
from graph import result_cache
from graph.escalation import escalate, needed_tools
from tools.base import ToolTraits, traits_of
from tools.registry import TOOL_NAMES, tool_traits, tools_where

REGISTRY = AgentRegistry.builtin()
SETTINGS = Settings()


def failed_twice(agent: str, instruction: str, model: str = "local-1.5b") -> TaskRecord:
    """A task that failed on ``model`` after the adjusted retry (by default on the top tier:
    the stronger-model step is behind it)."""
    task = Task(id="t1", agent=agent, instruction=instruction)
    return TaskRecord(task=task.model_dump(), status="failed", error="boom", attempts=2,
                      history=["failed: boom", "escalation: adjusted retry"],
                      failed_agents=[agent], metrics=TaskMetrics(model=model))  # fmt: skip


def test_a_support_action_never_goes_to_an_agent_without_its_tools() -> None:
    """Finding: an exception in a refund reassigned the support task to the coder."""
    record = failed_twice("support", "Write code to refund order O1001 with a Python script.")
    update: dict[str, Any] = dict(escalate(record, REGISTRY, SETTINGS))
    assert update.get("settled") is True and update.get("status") is None
    assert not any(h.startswith("escalation: reassigned") for h in update["history"])
    assert "escalation: no other agent has the tools this task needs (issue_refund, " in " ".join(update["history"])


def test_code_never_goes_to_an_agent_that_cannot_write_files() -> None:
    record = failed_twice("coder", "Write the function and its tests; the files must pass.")
    update: dict[str, Any] = dict(escalate(record, REGISTRY, SETTINGS))
    assert update.get("settled") is True


def test_reassignment_goes_to_an_agent_with_every_tool_of_the_failed_one() -> None:
    record = failed_twice("researcher", "Look up the refund window in the knowledge base.")
    update: dict[str, Any] = dict(escalate(record, REGISTRY, SETTINGS))
    (moved,) = [h for h in update["history"] if h.startswith("escalation: reassigned to ")]
    chosen = moved.removeprefix("escalation: reassigned to ")
    assert needed_tools(REGISTRY, Task(id="t1", agent="researcher", instruction="x")) <= set(
        REGISTRY.get(chosen).builtin_tools)
    # every agent without the tools is excluded, so worker selection cannot pick one either
    excluded = set(update["failed_agents"])
    assert {"coder", "analyst", "writer", "researcher"} <= excluded and chosen not in excluded
    assert REGISTRY.select(Task.model_validate(record["task"]), "checked", excluded).name == chosen


def test_a_failure_on_the_small_model_goes_to_the_next_tier_before_another_agent() -> None:
    record = failed_twice("coder", "Write the function and its tests.", model="local")
    record["metrics"] = TaskMetrics(model="local", latency_s=41.6, tokens_in=3000, tokens_out=500)
    update: dict[str, Any] = dict(escalate(record, REGISTRY, SETTINGS))
    assert update["status"] == "pending" and update["model"] == "local-1.5b"
    assert update["history"][-1] == (
        "escalation: stronger model local-1.5b (failed on local; 42 s, 3500 tokens so far)")
    assert "boom" in update["feedback"] and not update.get("failed_agents")
    # On the top tier the ladder is behind it: the next step is another agent (or none).
    again = failed_twice("coder", "Write the function and its tests.", model="local-1.5b")
    assert "model" not in escalate(again, REGISTRY, SETTINGS)


def test_the_stronger_model_step_follows_the_configured_ladder() -> None:
    settings = Settings(models={"mini": {"provider": "test", "model": "mini"},
                                "big": {"provider": "test", "model": "big"}},
                        model="mini", tiers=["mini", "big"])
    assert settings.tier_ladder() == ["mini", "big"]
    assert settings.stronger_model("mini") == "big" and settings.stronger_model("big") is None
    assert settings.stronger_model("local") is None  # off the ladder: no step
    assert Settings(model="test").tier_ladder() == []  # a configured model has no default ladder
    off = Settings(tiers=[])
    record = failed_twice("researcher", "Look up the refund window.", model="local")
    assert "model" not in escalate(record, REGISTRY, off)
    with pytest.raises(ValueError, match=r"tiers\[1\]: unknown model 'huge'"):
        Settings(tiers=["local", "huge"])


def test_traits_are_declared_on_the_tools() -> None:
    assert tool_traits("issue_refund") == ToolTraits(
        mutates=True, needs_approval=True, for_customer=True)
    assert tool_traits("write_file").writes_file == "path" and tool_traits("write_file").mutates
    assert tool_traits("query_data").reads_workspace and not tool_traits("query_data").mutates
    assert tool_traits("search_knowledge_base").reads_knowledge_base
    assert tools_where(TOOL_NAMES, "needs_approval") == {"issue_refund", "update_ticket"}
    assert {"write_file", "run_python", "issue_refund", "update_ticket"} == MUTATING_TOOLS
    assert WRITE_TOOLS == {"write_file": "path"}
    # the result cache reads them: an agent with a tool that mutates is never cached
    assert not result_cache.cacheable(REGISTRY.get("support"))
    assert result_cache.cacheable(REGISTRY.get("researcher"))
    # a tool from elsewhere (an MCP server) gets them from its risk
    mcp = StructuredTool.from_function(func=lambda: "x", name="t", description="d",
                                       metadata={"risk": "high"})  # fmt: skip
    assert traits_of(mcp) == ToolTraits(mutates=True, needs_approval=True)
