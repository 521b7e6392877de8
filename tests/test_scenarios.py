"""The three scenarios through the whole supervisor, with real tools and scripted decisions.

The test model stands in for the LLM's choices (which tool, which arguments); everything
else — the sandbox, the knowledge base, the customer database, approval — is real.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from langgraph.types import Command

from core.models.factory import use_model
from graph.supervisor import build_graph
from tests.scripting import ScriptedTeam, context_of, task


def step(action: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"use {action}", "action": action, "action_input": args, "answer": "", "citations": []}


def scripted(team: ScriptedTeam, steps: dict[str, list[dict[str, Any]]]) -> None:
    """Give each task marker a sequence of tool steps; then answer from what it observed."""

    def next_step(messages: Any) -> dict[str, Any]:
        marker = team._marker(messages)
        with team.lock:
            team.calls[marker] += 1
            n = team.calls[marker]
            team.prompts.append("\n".join(str(m.content) for m in messages))
        plan = steps.get(marker, [])
        if n <= len(plan):
            return plan[n - 1]
        observed = "\n".join(str(m.content) for m in messages[2:])[-1500:]
        return {"thought": "done", "action": "final_answer", "action_input": {},
                "answer": f"result-{marker}: {observed}", "citations": ["from tools"]}

    team.model.responses["AgentStep"] = next_step


def cfg(opts: dict[str, Any]) -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex, "settings": opts}, "recursion_limit": 300}


async def test_software_development_writes_code_and_runs_its_tests(saver, options):
    team = ScriptedTeam([{"tasks": [task("code", agent="coder"), task("doc", agent="writer", deps=["code"])]}])
    scripted(team, {"code": [
        step("write_file", path="slug.py", content="def slugify(s):\n    return '-'.join(s.lower().split())\n"),
        step("write_file", path="test_slug.py", content="from slug import slugify\n\ndef test_slugify():\n    assert slugify('Hello World') == 'hello-world'\n"),
        step("run_python", code="import pytest\nraise SystemExit(pytest.main(['-q', 'test_slug.py']))"),
    ]})
    c = cfg(options())
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "slugify with tests"}, c, durability="sync", context=context_of(c))
    state = (await graph.aget_state(c)).values
    code = state["results"]["code"]
    assert code["status"] == "done" and "1 passed" in code["output"]
    assert set(code["artifacts"]) == {"slug.py", "test_slug.py"}
    workspace = Path(options()["data_dir"]) / "workspaces" / c["configurable"]["thread_id"]
    assert (workspace / "slug.py").is_file()
    assert state["status"] == "completed" and "result-code" in state["answer"]


async def test_research_report_cites_the_knowledge_base(saver, options):
    team = ScriptedTeam([{"tasks": [task("find", agent="researcher"), task("report", agent="writer", deps=["find"])]}])
    scripted(team, {"find": [step("search_knowledge_base", query="vector search full-text BM25")]})
    c = cfg(options())
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "compare search"}, c, durability="sync", context=context_of(c))
    state = (await graph.aget_state(c)).values
    found = state["results"]["find"]["output"]
    assert ".md#" in found  # passages come back with [document#heading Lx-y] citations
    report_prompt = next(p for p in team.prompts if "[[report]]" in p)
    assert ".md#" in report_prompt  # the writer saw the researcher's cited findings
    assert state["status"] == "completed"


async def test_customer_service_refund_needs_approval_and_runs_once(saver, options):
    team = ScriptedTeam([{"tasks": [task("help", agent="support")]}])
    scripted(team, {"help": [
        step("lookup_order", order_id="O1001"),
        step("issue_refund", order_id="O1001", amount=20.0, reason="arrived damaged"),
    ]})
    c = cfg(options(review={"high_risk_tools": True}))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "refund O1001"}, c, durability="sync", context=context_of(c))
        paused = await graph.aget_state(c)
        approval = paused.interrupts[0]
        assert approval.value["type"] == "tool_approval" and approval.value["tool"] == "issue_refund"
        db = Path(options()["data_dir"]) / "customer_service.sqlite"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id='O1001'").fetchone()[0] == 0
        await graph.ainvoke(Command(resume={approval.id: {"approved": True}}), c, durability="sync")
    state = (await graph.aget_state(c)).values
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id='O1001'").fetchone()[0] == 1
    assert "O1001" in state["results"]["help"]["output"]
    assert state["status"] == "completed"


async def test_customer_service_rejected_refund_never_runs(saver, options):
    team = ScriptedTeam([{"tasks": [task("help", agent="support")]}])
    scripted(team, {"help": [step("lookup_order", order_id="O1001"),
                             step("issue_refund", order_id="O1001", amount=20.0, reason="asked")]})
    c = cfg(options(review={"high_risk_tools": True}))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": "refund O1001"}, c, durability="sync", context=context_of(c))
        approval = (await graph.aget_state(c)).interrupts[0]
        await graph.ainvoke(Command(resume={approval.id: {"approved": False, "feedback": "not eligible"}}), c, durability="sync")
    db = Path(options()["data_dir"]) / "customer_service.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id='O1001'").fetchone()[0] == 0
    assert "not eligible" in next(p for p in reversed(team.prompts) if "[[help]]" in p)


BUGGY_MODULE = '```python\ndef is_palindrome(s: str) -> bool:\n    """Return True if s is a palindrome."""\n    return s == s[::-1]\n```'
STRICT_TESTS = ("```python\ndef test_is_palindrome():\n    assert is_palindrome('Never odd or even') is True\n"
                "    assert is_palindrome('abc') is False\n```")


async def test_code_whose_tests_never_pass_is_a_failed_task_and_the_answer_says_so(saver, options, tmp_path):
    """The coder's step flow: tests that still fail after the repairs fail the task (they did
    not end it ``done`` and the run ``completed``); the supervisor retries it once, does not
    hand a coding task to an agent that cannot code, and the answer shows the failing run."""
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text('[agents.coder]\nflow = "steps"\n')
    instruction = "Write a Python function is_palindrome(s) ignoring case and spaces, with pytest tests. [[code]]"
    team = ScriptedTeam([{"tasks": [{**task("code", agent="coder"), "instruction": instruction}]}])
    prompts: list[str] = []

    def reply(messages: Any) -> str:
        prompts.append(str(messages[0].content))
        return STRICT_TESTS if "pytest tests" in str(messages[0].content) else BUGGY_MODULE

    team.model.text = reply
    c = cfg(options(agents_file=str(agents_file)))
    graph = build_graph(checkpointer=saver)
    with use_model(team.model):
        await graph.ainvoke({"goal": instruction}, c, durability="sync", context=context_of(c))
    state = (await graph.aget_state(c)).values
    code = state["results"]["code"]
    assert code["status"] == "failed" and code["settled"]
    assert "FAILED in the sandbox (1 failed, 1 passed)" in code["error"]
    assert "def is_palindrome" in code["output"] and code["artifacts"] == ["palindrome.py", "test_palindrome.py"]
    assert [h for h in code["history"] if h.startswith("escalation")] == [
        "escalation: adjusted retry",
        "escalation: no other agent has the tools this task needs (list_files, read_file, run_python, write_file)",
        "escalation: exhausted"]  # not handed to an agent that cannot write files
    assert code["task"]["agent"] == "coder" and team.calls["code"] == 0  # no tool-loop step ran
    # the first try: the module, then two second samples (identical to it here, so no
    # evidence for setting a check aside); the retry starts from the files the first try
    # left, so it writes no module from nothing: only its two second samples
    assert sum("You write Python modules" in p for p in prompts) == 3 + 2
    assert "started from the files the attempt before left" in code["output"]
    assert state["status"] == "failed"
    assert "FAILED in the sandbox" in state["answer"] and "return s == s[::-1]" in state["answer"]
