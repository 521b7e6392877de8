"""Answering pauses from the CLI: one decision per interrupt id, clear errors, visible prompts."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Interrupt
from rich.console import Console

from core import review
from core.review import ReviewDecision
from orchestrator.cli import commands, main
from orchestrator.cli.answers import Requested, UsageError, from_flags, resume_map

PLAN = review.plan_review_request("g", [{"id": "t1", "agent": "writer", "instruction": "write"}], 1)
TRACE = [{"kind": "call", "tool": "lookup_order", "args": {"order_id": "O1001"}, "ok": True,
          "observation": "order O1001: $20.00, delivered 3 days ago, damaged on arrival"},
         {"kind": "call", "tool": "search_knowledge_base", "args": {"query": "refund damaged"}, "ok": True,
          "observation": "refund-policy.md: damaged items are refundable within 30 days"}]


def refund(n: int) -> dict[str, Any]:
    return review.tool_approval_request(f"t{n}", "support", "issue_refund",
                                        {"order_id": f"O100{n}", "amount": 20.0}, "the policy allows it", TRACE)


TOOLS = [Interrupt(value=refund(1), id="aaaa1111"), Interrupt(value=refund(2), id="bbbb2222")]


def test_each_interrupt_is_answered_by_its_id() -> None:
    answers = resume_map(TOOLS, from_flags(["aaaa1111"], [["bbbb2222", "not this one"]], None))
    q1, q2 = refund(1)["question"], refund(2)["question"]  # each answer names its question
    assert answers == {"aaaa1111": {"decisions": [{"type": "approve"}], "question": q1},
                       "bbbb2222": {"decisions": [{"type": "reject", "message": "not this one"}],
                                    "question": q2}}
    assert review.read_tool_answer(answers["aaaa1111"]) == (True, "")
    assert review.read_tool_answer(answers["bbbb2222"]) == (False, "not this one")


def test_a_unique_prefix_names_an_interrupt_and_the_rest_stay_pending() -> None:
    assert list(resume_map(TOOLS, from_flags(["bbbb"], None, None))) == ["bbbb2222"]


def test_a_bare_flag_answers_the_only_pending_interrupt() -> None:
    q1 = refund(1)["question"]
    assert resume_map(TOOLS[:1], from_flags([None], None, None)) == {
        "aaaa1111": {"decisions": [{"type": "approve"}], "question": q1}}
    # --reject "why" with one value that is no interrupt id: the reason
    answer = resume_map(TOOLS[:1], from_flags(None, [["too much"]], None))["aaaa1111"]
    assert answer == {"decisions": [{"type": "reject", "message": "too much"}], "question": q1}


@pytest.mark.parametrize(
    ("pending", "requested", "message"),
    [
        (TOOLS, [Requested(None, ReviewDecision("approve"))], "2 interrupts are waiting"),
        (TOOLS, [Requested("cccc3333", ReviewDecision("approve"))], "no pending interrupt 'cccc3333'"),
        (TOOLS, [Requested("aaaa1111", ReviewDecision("approve")), Requested("aaaa", ReviewDecision("reject"))],
         "answered twice"),
        (TOOLS[:1], [Requested(None, ReviewDecision("edit", tasks=[]))], "can only be approved or rejected"),
        (TOOLS, [], "paused for review"),
    ],
)
def test_bad_answers_are_usage_errors_that_list_the_pending(pending: list[Interrupt], requested: list[Requested],
                                                            message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        resume_map(pending, requested)
    if "waiting" in message or "no pending" in message:
        assert "aaaa1111 (tool_approval): Task t1 (support) wants to run issue_refund" in str(err.value)


def test_text_mode_shows_the_tool_its_arguments_and_what_the_agent_found() -> None:
    sink = io.StringIO()
    commands.show_pending([{"id": i.id, "value": i.value} for i in TOOLS], Console(file=sink, width=200))
    text = sink.getvalue()
    assert "Interrupt aaaa1111 (tool_approval)" in text and "Interrupt bbbb2222" in text
    assert 'issue_refund with {"order_id": "O1001", "amount": 20.0}' in text
    assert "damaged items are refundable within 30 days" in text and 'Why (the model\'s words, quoted): "the policy allows it"' in text


def test_the_interactive_prompts_show_their_bracketed_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich markup must not swallow [a]pprove / [e]dit / [r]eject."""
    shown: list[str] = []

    def ask(prompt: str, **kwargs: Any) -> str:
        sink = io.StringIO()
        Console(file=sink, width=200).print(prompt)
        shown.append(sink.getvalue().strip())
        return kwargs.get("default", "a") if "choices" not in kwargs or "a" in kwargs["choices"] else "n"

    monkeypatch.setattr(commands.Prompt, "ask", staticmethod(ask))
    answers = commands.ask_human([Interrupt(value=PLAN, id="p1"), TOOLS[0]])
    assert shown[0] == "Plan: [a]pprove, [e]dit, [r]eject"
    assert answers["p1"] == {"decisions": [{"type": "approve"}], "question": PLAN["question"]}
    assert review.read_tool_answer(answers["aaaa1111"])[0] is False  # default: not allowed


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "refund\x00order O1001", "--model", "test"], "NUL character"),
        (["run", "g", "--model", "test", "--thread", "a b"], "--thread 'a b'"),
        (["fork", "t1", "--checkpoint", "x", "--set", "[1]"], "--set must be a JSON object"),
        (["fork", "t1", "--checkpoint", "x", "--set", "{oops"], "--set is not valid JSON"),
        (["run", "g", "--model", "test", "--thread", "a b", "--url", "http://127.0.0.1:9"], "--thread 'a b'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          args: list[str], message: str) -> None:
    code, text = run_cli(capsys, *args)
    assert code == 2 and message in text
    assert len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "data" / "checkpoints.sqlite").exists()


def test_edit_at_a_tool_approval_is_a_usage_error_and_the_run_stays_paused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A real pause on a tool approval (a scripted plan of one refund task), answered with --edit."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"id": "t1", "agent": "support",
                                 "instruction": "Issue a refund for order O-1001 and update ticket T-1."}]))
    code, _ = run_cli(capsys, "run", "Refund order O-1001", "--model", "test", "--thread", "r1", "--json")
    assert code == 3
    code, text = run_cli(capsys, "resume", "r1", "--edit", str(plan), "--json")
    for _ in range(6):
        outcome = json.loads(text[text.index("{"):]) if "{" in text else {}
        kinds = {i["value"]["type"] for i in outcome.get("interrupts", [])}
        if code != 3 or kinds == {"tool_approval"}:
            break
        code, text = run_cli(capsys, "resume", "r1", "--approve", "--json")
    if code != 3:
        pytest.skip("the test model's support agent finished without a high-risk call")
    code, text = run_cli(capsys, "resume", "r1", "--edit", str(plan))
    assert code == 2 and "can only be approved or rejected" in text
    code, text = run_cli(capsys, "show", "r1", "--json")
    assert code == 3 and {i["value"]["type"] for i in json.loads(text[text.index("{"):])["interrupts"]} == {"tool_approval"}
