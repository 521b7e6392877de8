"""The ``orchestrator`` CLI in-process on the test model: output, exit codes, review, fork."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | list[Any] | None, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    try:
        data = json.loads(captured.out) if captured.out.strip() else None
    except json.JSONDecodeError:
        data = None
    return code, data, captured.err + captured.out


def test_run_completes_with_the_json_contract(capsys):
    code, out, _ = run_cli(capsys, "run", "Summarize the refund policy", "--model", "test", "--auto-approve", "--json")
    assert code == 0 and isinstance(out, dict)
    assert out["status"] == "completed" and out["answer"]
    assert {"thread_id", "plan", "metrics"} <= set(out)
    assert all({"id", "agent", "depends_on", "status"} <= set(t) for t in out["plan"])
    assert {"tasks_completed", "tasks_failed", "tokens", "latency_s"} <= set(out["metrics"])


def test_review_pause_resume_history_fork_and_show(capsys, tmp_path: Path):
    code, out, _ = run_cli(capsys, "run", "Write a haiku about SQLite", "--model", "test", "--thread", "t1", "--json")
    assert code == 3 and out["status"] == "interrupted"
    assert out["interrupts"][0]["value"]["type"] == "plan_review"
    assert out["resume"].startswith("orchestrator resume t1")

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"id": "w", "agent": "writer", "instruction": "Write the haiku"}]))
    code, out, _ = run_cli(capsys, "resume", "t1", "--edit", str(plan), "--json")
    assert [t["id"] for t in out["plan"]] == ["w"]
    # Tool approvals may follow with the test model's random tool choices; approve them all.
    for _ in range(10):  # bounded: a run that keeps pausing must fail, not hang
        if code != 3:
            break
        code, out, _ = run_cli(capsys, "resume", "t1", "--approve", "--json")
    assert code == 0 and out["status"] == "completed"

    code, history, _ = run_cli(capsys, "history", "t1", "--json")
    assert code == 0 and isinstance(history, list) and len(history) > 3
    at_review = next(h for h in history if h["next"] == ["review_plan"])

    code, out, _ = run_cli(capsys, "fork", "t1", "--checkpoint", at_review["checkpoint_id"], "--json")
    assert code == 3 and out["interrupts"][0]["value"]["type"] == "plan_review"  # asked again
    assert out["forked_from"] == at_review["checkpoint_id"]
    code, history_after, _ = run_cli(capsys, "history", "t1", "--json")
    ids = {h["checkpoint_id"] for h in history_after}
    assert {h["checkpoint_id"] for h in history} <= ids  # the original branch is intact

    code, out, _ = run_cli(capsys, "show", "t1", "--json")
    assert code == 3 and out["thread_id"] == "t1"


def test_resume_without_a_decision_at_a_review_is_a_usage_error(capsys):
    run_cli(capsys, "run", "g", "--model", "test", "--thread", "t2", "--json")
    code, _, text = run_cli(capsys, "resume", "t2", "--json")
    assert code == 2 and "--approve" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "   ", "--model", "test"], "the goal is empty"),
        # zero-width space, non-joiner, joiner, word joiner, BOM, a bidi mark, Hangul filler
        (["run", "\u200b\u200c\u200d\u2060\ufeff\u200e\u3164", "--model", "test"],
         "the goal is empty: it has only invisible characters"),
        (["resume", "missing-thread", "--approve"], "no thread 'missing-thread'"),
        (["run", "x" * 9000, "--model", "test"], "limits.max_goal_chars"),
        (["run", "g", "--model", "nope"], "unknown model 'nope'"),
        (["show", "missing-thread"], "no thread 'missing-thread'"),
        (["fork", "missing-thread", "--checkpoint", "x"], "no thread 'missing-thread'"),
    ],
)
def test_bad_input_gets_a_clear_error_and_exit_code_2(capsys, args, message):
    code, _, text = run_cli(capsys, *args)
    assert code == 2 and message in text


def test_a_goal_with_visible_text_among_invisible_characters_is_kept():
    from core.goal import check_goal

    assert check_goal("\u200bWrite\u200d a haiku\ufeff", 100) == "\u200bWrite\u200d a haiku\ufeff"
    assert check_goal("\u00e9t\u00e9 \u2014 r\u00e9sum\u00e9 \U0001f600", 100)  # accents, emoji


def test_a_resume_naming_no_pending_interrupt_is_an_error_naming_the_pending(capsys):
    run_cli(capsys, "run", "g", "--model", "test", "--thread", "t3", "--json")  # plan review
    _, out, _ = run_cli(capsys, "show", "t3", "--json")
    [pending] = [i["id"] for i in out["interrupts"]] if isinstance(out, dict) else [None]
    for flags in (["--approve", "0123456789abcdef0123456789abcdef"],
                  ["--reject", "0123456789abcdef0123456789abcdef"]):  # an id, not a reason
        code, _, text = run_cli(capsys, "resume", "t3", *flags, "--json")
        assert code == 2, text
        assert "no pending interrupt '0123456789abcdef0123456789abcdef'; pending: " + pending in text
    _, after, _ = run_cli(capsys, "show", "t3", "--json")
    assert isinstance(after, dict) and isinstance(out, dict)
    assert (after["checkpoint_id"], after["interrupts"]) == (out["checkpoint_id"], out["interrupts"])


def test_bad_config_file_names_the_key(capsys, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_concurrency = 0\nbogus = 1\n")
    code, _, text = run_cli(capsys, "--config", str(bad), "models")
    assert code == 2
    assert "limits.max_concurrency" in text and "limits.bogus: unknown key" in text
    broken = tmp_path / "broken.toml"
    broken.write_text("model = \n")
    code, _, text = run_cli(capsys, "--config", str(broken), "models")
    assert code == 2 and str(broken) in text


def test_models_lists_providers_and_readiness(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0 and isinstance(out, list)
    by_name = {m["name"]: m for m in out}
    assert by_name["test"]["ready"] is True
    assert {"local", "test"} <= set(by_name)


def test_the_task_board_of_a_resumed_run_starts_from_the_plan_in_state(capsys, monkeypatch):
    """The plan is streamed before the review pause, not again after it: the board of the
    resumed leg (or of an answer given inline) starts from the thread's plan and results."""
    from orchestrator.cli import commands, view

    boards: list[dict[str, str]] = []

    class Recording(view.TaskBoard):
        def __enter__(self) -> view.TaskBoard:
            boards.append(dict(self.status))  # what the board shows before any event
            return super().__enter__()

    monkeypatch.setattr(commands, "TaskBoard", Recording)
    code, out, _ = run_cli(capsys, "run", "Write a haiku about SQLite", "--model", "test",
                           "--thread", "board-1", "--json")  # fmt: skip
    assert code == 3 and boards == [{}]  # a new goal: nothing known yet
    planned = {t["id"] for t in out["plan"]}
    code, out, _ = run_cli(capsys, "resume", "board-1", "--approve", "--json")
    assert set(boards[1]) == planned and set(boards[1].values()) == {"pending"}


def test_the_printed_answer_keeps_its_citations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer is printed as text: a citation in brackets is not a style tag to drop."""
    from rich.console import Console

    from orchestrator.cli import commands

    console = Console(record=True, width=200)
    monkeypatch.setattr(commands, "out", console)
    answer = "Refunds take 5-10 days [1].\n\nSources:\n- [refund-policy.md#Processing time L40-44]"
    outcome = {"status": "completed", "answer": answer, "thread_id": "t", "resume": "r",
               "metrics": {"tasks_completed": 1, "tasks_total": 1, "tasks_failed": 0, "tokens": 1,
                           "cost_usd": 0.0, "latency_s": 1.0}}  # fmt: skip
    assert commands.print_outcome(outcome, as_json=False) == 0
    text = console.export_text()
    assert "- [refund-policy.md#Processing time L40-44]" in text and "[1]" in text
