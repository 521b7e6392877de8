"""Agents using MCP tools: ``tools = ["mcp:<server>"]`` against the tiny stdio add server."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command

import agents.toolset as specialist
from agents import AgentRegistry, AgentSpec, base_settings, build_specialist
from agents.steps import STEP_SCHEMA_NAME
from core.models import TestChatModel
from core.settings import ConfigError, Settings
from tests.scripting import context_of

SERVER = Path(__file__).parent / "fixtures" / "mcp_add_server.py"
AGENTS_TOML = """
[agents.calculator]
description = "Adds numbers with the math server."
tools = ["mcp:math"]
prompt = "Use the add tool, then answer with the sum."
"""
TASK = {
    "id": "t1",
    "agent": "calculator",
    "instruction": "What is 1234 + 4321?",
    "acceptance_criteria": "",
    "depends_on": [],
}


def math_server(**extra: Any) -> dict[str, Any]:
    return {"transport": "stdio", "command": sys.executable, "args": [str(SERVER)], **extra}


def setup(
    tmp_path: Path, math: dict[str, Any], agents_toml: str = AGENTS_TOML
) -> tuple[AgentSpec, RunnableConfig]:
    """The calculator spec (loaded and checked like the supervisor does) and a run config."""
    path = tmp_path / "agents.toml"
    path.write_text(agents_toml)
    settings: dict[str, Any] = {
        "model": "ts",
        "models": {"ts": {"provider": "test", "model": "ts", "tool_mode": "structured"}},
        "data_dir": str(tmp_path),
        "agents_file": str(path),
        "mcp_servers": {"math": math},
    }
    spec = AgentRegistry.load(Settings.model_validate(settings)).get("calculator")
    config: RunnableConfig = {
        "configurable": {"thread_id": f"run-{uuid.uuid4().hex[:8]}", "settings": settings}
    }
    base_settings()  # the process's settings load once, outside the loop, as in a server
    return spec, config


class Script:
    """Structured steps in order (the last repeats); records each prompt's text."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.replies = replies
        self.prompts: list[str] = []

    def __call__(self, messages: list[BaseMessage]) -> dict[str, Any]:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        return self.replies[min(len(self.prompts), len(self.replies)) - 1]


ADD = {"thought": "add them", "action": "add", "action_input": {"a": 1234, "b": 4321}}
ANSWER = {"thought": "done", "action": "final_answer", "action_input": {}, "answer": "5555"}


class Parent(TypedDict, total=False):
    task: dict[str, Any]
    result: dict[str, Any]


def factory(script: Script) -> Any:
    model = TestChatModel(responses={STEP_SCHEMA_NAME: script})
    return lambda settings, role: model


async def test_agent_calls_mcp_tool_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blockbuster = pytest.importorskip("blockbuster")
    listings: list[str] = []
    real = specialist.load_mcp_tools

    async def counting(servers: dict[str, dict[str, Any]]) -> Any:
        listings.extend(servers)
        return await real(servers)

    monkeypatch.setattr(specialist, "load_mcp_tools", counting)
    monkeypatch.setattr(specialist, "_mcp_cache", {})  # a fresh process
    spec, config = setup(tmp_path, math_server())
    script = Script(ADD, ANSWER)
    graph = build_specialist(spec, model_factory=factory(script))
    with blockbuster.blockbuster_ctx():  # like the LangGraph dev server
        out = await graph.ainvoke({"task": TASK}, config, context=context_of(config))
    assert out["output"] == "5555" and out["error"] is None
    assert "- add(a: integer, b: integer): Add two integers" in script.prompts[0]  # a tool
    assert "Result of add:\n5555" in script.prompts[1]  # the observation holds the sum
    assert listings == ["math"]  # listed once, then cached across steps and nodes


async def test_high_risk_mcp_tool_needs_approval(tmp_path: Path) -> None:
    spec, config = setup(tmp_path, math_server(risk="high"))
    script = Script(ADD, ANSWER)
    sub = build_specialist(spec, model_factory=factory(script))

    async def run_task(state: Parent, config: RunnableConfig) -> dict[str, Any]:
        return {"result": await sub.ainvoke({"task": state["task"]}, config, context=context_of(config))}

    builder = StateGraph(Parent)
    builder.add_node("run_task", run_task)
    builder.add_edge(START, "run_task")
    graph = builder.compile(checkpointer=InMemorySaver())

    first = await graph.ainvoke({"task": TASK}, config, context=context_of(config))
    assert first["__interrupt__"][0].value["tool"] == "add"
    done = await graph.ainvoke(Command(resume={"approved": True}), config, context=context_of(config))
    assert done["result"]["output"] == "5555"
    assert "Result of add:\n5555" in script.prompts[-1]


async def test_unreachable_server_is_noted_once(tmp_path: Path) -> None:
    toml = AGENTS_TOML.replace('["mcp:math"]', '["list_files", "mcp:math"]')
    spec, config = setup(tmp_path, {"command": str(tmp_path / "missing")}, toml)
    list_files = {"thought": "look", "action": "list_files", "action_input": {}}
    script = Script(list_files, ANSWER)  # the agent goes on with its other tools
    out = await build_specialist(spec, model_factory=factory(script)).ainvoke(
        {"task": TASK}, config
    )
    assert out["output"] == "5555" and out["error"] is None and out["steps"] == 2
    note = "MCP server 'math' are unavailable"
    assert "- list_files(" in script.prompts[0] and "- add(" not in script.prompts[0]
    assert script.prompts[0].count(note) == 1
    assert "Result of list_files:" in script.prompts[1]
    assert script.prompts[1].count(note) == 1  # noted once, not once per step


async def test_unknown_mcp_server_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(AGENTS_TOML)
    settings = Settings(agents_file=path, mcp_servers={"files": {"command": "x"}})
    with pytest.raises(ConfigError, match=r"agents\.calculator\.tools: unknown MCP server 'math'"):
        AgentRegistry.load(settings)
    with pytest.raises(ConfigError, match="known servers \\(mcp_servers\\): files") as err:
        await AgentRegistry.aload(settings)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="unknown tool"):
        AgentSpec(name="x", description="d", prompt="p", tools=["mcp:"])
