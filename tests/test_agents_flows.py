"""The step flows (coder, researcher, support) with scripted TestChatModel replies and the
real tools: the scaffolding around the model, not the model, is what is tested here."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command

from agents import AgentRegistry, build_specialist
from agents.flows import code_text
from agents.flows.evidence import key_lines, lines_of, quotes
from agents.flows.researcher import cited, tidy
from core.models import TestChatModel
from core.settings import Settings
from tests.scripting import context_of

REGISTRY = AgentRegistry.builtin()
MODELS = {"ts": {"provider": "test", "model": "ts", "tool_mode": "structured"}}

MODULE_REPLY = '''Here it is:
```python
def is_palindrome(s: str) -> bool:
    """Return True if s is a palindrome."""
    t = "".join(c.lower() for c in s if c.isalnum())
    return t == t[::-1]

print(is_palindrome("abba"))
```'''
BUGGY_MODULE = '''```python
def is_palindrome(s: str) -> bool:
    """Return True if s is a palindrome."""
    return s == s[::-1]
```'''
TESTS_REPLY = '''```python
import pytest

def test_is_palindrome():
    """Doc."""
    assert is_palindrome("A man, a plan, a canal: Panama") is True
    assert is_palindrome("abc") is False
    assert is_palindrome("abc") is True
    assert is_palindrome("") is True

test_is_palindrome()
```'''


def config(tmp_path: Path, **overrides: Any) -> RunnableConfig:
    settings = {"model": "ts", "models": MODELS, "data_dir": str(tmp_path), **overrides}
    return {"configurable": {"thread_id": f"run-{uuid.uuid4().hex[:8]}", "settings": settings}}


def factory(model: TestChatModel) -> Any:
    def make(settings: Settings, role: str) -> TestChatModel:
        return model

    return make


async def run(
    agent: str, model: TestChatModel, cfg: RunnableConfig, goal: str, **kw: Any
) -> dict[str, Any]:
    spec = REGISTRY.get(agent).model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t1", "agent": agent, "instruction": goal, "depends_on": []}
    return dict(
        await graph.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg), **kw)
    )


# -- code text --------------------------------------------------------------------------------


def test_module_split_keeps_definitions_and_moves_tests() -> None:
    split = code_text.split_module(code_text.code_of(MODULE_REPLY + "\n"))
    assert split.error is None and split.names == ["is_palindrome"]
    assert "print(" not in split.module and "def is_palindrome" in split.module
    assert code_text.module_name("Save it in pal.py", split.names) == "pal.py"
    assert code_text.module_name("a palindrome checker", split.names) == "palindrome.py"


def test_a_reply_cut_at_the_cap_keeps_its_finished_lines() -> None:
    cut = "```python\ndef test_a():\n    assert f(1) == 2\n    assert f(2) =="
    assert code_text.code_of(cut) == "def test_a():\n    assert f(1) == 2\n"


def test_test_file_adds_the_import_and_drops_contradictions_and_calls() -> None:
    text, error = code_text.test_file(
        code_text.code_of(TESTS_REPLY), "palindrome.py", ["is_palindrome"]
    )
    assert error is None
    assert text.startswith("from palindrome import is_palindrome\nimport pytest")
    assert "abc" not in text  # True and False for the same call: both dropped
    assert "test_is_palindrome()" not in text.replace("def test_is_palindrome", "")
    assert code_text.count_tests(text) == 2
    assert code_text.test_file("x = 1\n", "m.py", ["f"])[1] is not None


def test_failed_checks_name_the_assert_and_the_error() -> None:
    out = ">       assert f('a') == 2\nE       AssertionError: assert 1 == 2\n"
    assert code_text.failed_checks(out) == ["assert f('a') == 2  -> AssertionError: assert 1 == 2"]
    assert code_text.pytest_summary("...\n1 failed, 2 passed in 0.1s\n") == "1 failed, 2 passed"


# -- coder ------------------------------------------------------------------------------------


async def test_coder_writes_module_and_tests_and_runs_them(tmp_path: Path) -> None:
    model = TestChatModel(script=[MODULE_REPLY, TESTS_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["error"] is None and out["artifacts"] == ["palindrome.py", "test_palindrome.py"]
    assert out["verification"]["passed"] is True
    assert "2 passed" in out["output"] and "def is_palindrome" in out["output"]
    assert out["usage"]["model_calls"] == 2
    ws = next((tmp_path / "workspaces").iterdir())
    assert "import is_palindrome" in (ws / "test_palindrome.py").read_text()


async def test_coder_repairs_the_module_from_the_failing_checks(tmp_path: Path) -> None:
    model = TestChatModel(script=[BUGGY_MODULE, TESTS_REPLY, MODULE_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["verification"]["passed"] is True and out["usage"]["model_calls"] == 3


async def test_coder_reports_failing_tests_honestly(tmp_path: Path) -> None:
    model = TestChatModel(script=[BUGGY_MODULE, TESTS_REPLY, BUGGY_MODULE, TESTS_REPLY])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker with tests.")
    assert out["verification"]["passed"] is False
    assert "the tests FAILED" in out["output"] and "1 failed" in out["output"]


async def test_coder_without_code_fails_instead_of_inventing(tmp_path: Path) -> None:
    model = TestChatModel(script=["I cannot.", "Still no code."])
    out = await run("coder", model, config(tmp_path), "Write a palindrome checker.")
    assert out["output"] == "" and "no usable module" in out["error"]


# -- researcher -------------------------------------------------------------------------------


async def test_researcher_cites_only_passages_it_retrieved(tmp_path: Path) -> None:
    reply = "Refunds are accepted within 30 days of delivery [1]. See also [9]."
    model = TestChatModel(script=[reply])
    out = await run(
        "researcher",
        model,
        config(tmp_path),
        "What does our refund policy say about the time limit for refunds?",
    )
    assert out["citations"] and all("refund-policy.md" in c for c in out["citations"])
    assert "[9]" not in out["output"] and "Sources:" in out["output"]


def test_citations_fall_back_to_overlap_and_tidy_cuts_loops() -> None:
    passages = [{"citation": "[a.md L1-2]", "path": "a.md", "text": "refunds within thirty days of delivery"},
                {"citation": "[b.md L1-2]", "path": "b.md", "text": "laptops warranty coverage"}]  # fmt: skip
    assert cited("Refunds are possible within thirty days of delivery.", passages) == [
        "[a.md L1-2]"
    ]
    assert cited("Nothing in common here at all.", passages) == []
    assert tidy("It works [1]. The score is: [2] * [3] * * * * *") == "It works [1]."


SECTION = """## Approval limits

- Support agents may issue refunds up to **$500 per order**.
- Refunds above $500 require a team lead's approval.

| Priority | First response |
|----------|----------------|
| urgent   | 1 hour         |

Every refund needs a reason. It is recorded with it."""


def test_key_lines_are_verbatim_units_of_the_passage() -> None:
    units = lines_of(SECTION)
    assert units == [
        "Support agents may issue refunds up to **$500 per order**.",
        "Refunds above $500 require a team lead's approval.",
        "Priority, First response",
        "urgent, 1 hour",
        "Every refund needs a reason.",
        "It is recorded with it.",
    ]
    assert key_lines(SECTION, "who approves a refund above $500?", n=1) == [
        "Refunds above $500 require a team lead's approval."
    ]
    assert key_lines(SECTION, "cryptocurrency wallets", n=2) == []  # nothing shared, nothing quoted


def test_quotes_take_a_section_about_the_request_whole_and_only_retrieved_lines() -> None:
    about = {"citation": "[refund.md#Approval limits L1-9]", "path": "refund.md", "text": SECTION}
    other = {"citation": "[x.md#Other L1-2]", "path": "x.md",
             "text": "## Other\n\nUnrelated words here. A refund reason is recorded."}  # fmt: skip
    found = quotes([other, about], "What are the approval limits?")
    assert [c for _, c in found].count("[refund.md#Approval limits L1-9]") == 5  # heading matched
    assert all(c == about["citation"] for _, c in found)  # "other" shares one term only
    assert all(line in SECTION for line, _ in found if "," not in line)


async def test_researcher_answer_quotes_the_passages_the_model_dropped(tmp_path: Path) -> None:
    model = TestChatModel(script=["Refunds have a time limit [1]."])  # drops the number
    out = await run(
        "researcher", model, config(tmp_path), "What is the time limit for refunds after delivery?"
    )
    assert "From the sources:" in out["output"] and "**30 days of delivery**" in out["output"]
    line = next(x for x in out["output"].splitlines() if "30 days of delivery" in x)
    assert line.endswith("]") and "refund-policy.md#" in line  # quoted with its citation
    assert out["citations"] and all(c in out["output"] for c in out["citations"])


# -- support ----------------------------------------------------------------------------------


def refunds(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        return conn.execute(
            "SELECT order_id, amount_cents FROM refunds WHERE order_id='O1001'"
        ).fetchall()


async def test_support_refund_pauses_for_approval_and_runs_once(tmp_path: Path) -> None:
    model = TestChatModel(script=["It arrived damaged, so it is refunded in full [1]."])
    cfg = config(tmp_path)
    spec = REGISTRY.get("support").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    parent = StateGraph(dict)  # type: ignore[type-var]  # a parent that owns the checkpointer
    parent.add_node("support", graph)
    parent.add_edge(START, "support")
    app = parent.compile(checkpointer=InMemorySaver())
    goal = "Customer C001 asks for a refund of order O1001 because it arrived damaged. Handle the refund."
    task = {"id": "t1", "agent": "support", "instruction": goal, "depends_on": []}
    first = await app.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg))
    pause = first["__interrupt__"][0].value
    assert pause["tool"] == "issue_refund" and pause["args"]["order_id"] == "O1001"
    assert pause["args"]["amount"] == 129.0  # what the order allows: damaged, so no label
    assert refunds(tmp_path) == []
    out = await app.ainvoke(Command(resume={"approved": True}), cfg, context=context_of(cfg))
    assert refunds(tmp_path) == [("O1001", 12900)]
    assert "Actions taken: Refund" in out["output"] or "refund" in out["output"].lower()


async def test_support_does_nothing_when_the_request_forbids_it(tmp_path: Path) -> None:
    model = TestChatModel(script=["It is eligible [1]. I issued a refund."])
    goal = "Is order O1001 eligible for a refund? Only check and explain; do not issue anything."
    out = await run("support", model, config(tmp_path, review={"high_risk_tools": False}), goal)
    assert refunds(tmp_path) == [] and "Actions taken: none." in out["output"]
    assert "inside the window (15 days left)" in out["output"]  # computed by code
    assert "O1001" in out["output"]  # the record looked up by code is shown


async def test_support_plans_the_action_from_the_records_not_the_model(tmp_path: Path) -> None:
    model = TestChatModel(script=["I refunded the whole order. [1]"])  # the reply cannot act
    cfg = config(tmp_path, review={"high_risk_tools": False})
    goal = "James Chen wants a full refund for order O1003 (dead pixels). Handle the refund."
    out = await run("support", model, cfg, goal)
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        rows = conn.execute("SELECT * FROM refunds WHERE order_id='O1003'").fetchall()
    assert rows == []  # $661 left is above the $500 agent limit: no partial refund either
    assert "Actions taken: none. No refund: a full refund is above the $500" in out["output"]
    assert "Ticket T502" in out["output"]  # the order's ticket, looked up through the link


async def test_support_refund_deducts_the_label_when_not_our_fault(tmp_path: Path) -> None:
    model = TestChatModel(script=["Refund issued minus the label [1]."])
    cfg = config(tmp_path, review={"high_risk_tools": False})
    goal = "The customer of order O1008 simply prefers another colour. Issue the refund."
    out = await run("support", model, cfg, goal)
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        rows = conn.execute("SELECT amount_cents FROM refunds WHERE order_id='O1008'").fetchall()
    assert rows == [(5205,)] and "Refund #" in out["output"]


async def test_support_escalates_only_when_asked_and_after_approval(tmp_path: Path) -> None:
    model = TestChatModel(script=["The ticket goes to a team lead."])
    cfg = config(tmp_path)
    goal = "The VIP customer is unhappy about ticket T503. Escalate it to a team lead."
    first = await run("support", model, cfg, goal)
    pause = first["__interrupt__"][0].value
    assert pause["tool"] == "update_ticket"
    assert pause["args"]["ticket_id"] == "T503" and pause["args"]["status"] == "escalated"
    asked = await run(
        "support", TestChatModel(script=["It may be escalated."]), config(tmp_path),
        "Should ticket T503 be escalated under the escalation policy?",
    )  # fmt: skip
    assert "__interrupt__" not in asked and "Actions taken: none." in asked["output"]
