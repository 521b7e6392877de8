"""The CLI's commands: run, resume, history, fork, show, models."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from langgraph.types import Command, Interrupt
from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Table

from agents import RunContext
from core.goal import InvalidGoal, check_goal
from core.review import ReviewDecision, describe, kind_of, resume_value
from core.settings import ConfigError, Settings
from core.tracing import start_otel_run, trace_run
from graph.history import CheckpointNotFound, ForkEditError
from graph.runner import Runner
from orchestrator.cli.answers import Requested, UsageError, load_tasks, not_applied, resume_map
from orchestrator.cli.session import EXIT, stream_run, summarise
from orchestrator.cli.view import TaskBoard
from orchestrator.observability.terminal import render_why

out = Console()
err = Console(stderr=True)


THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a thread id may be: it names a workspace directory and a server thread."""


def validate_goal(goal: str, settings: Settings) -> str:
    """A usable goal, or a UsageError saying why not (the graph's first node checks the same)."""
    try:
        return check_goal(goal, settings.limits.max_goal_chars)
    except InvalidGoal as exc:
        raise UsageError(str(exc)) from None


def validate_thread(thread: str) -> str:
    """A usable thread id, or a UsageError saying why not."""
    if not THREAD_ID.fullmatch(thread):
        raise UsageError(
            f"--thread {thread!r}: use 1-128 letters, digits, '.', '_', ':' or '-' (no spaces),"
            " starting with a letter or digit"
        )
    return thread


def fork_values(text: str | None) -> dict[str, Any] | None:
    """``fork --set JSON``: the state values to change, a JSON object."""
    if text is None:
        return None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--set is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise UsageError(f"--set must be a JSON object of state values, e.g. '{{\"goal\": \"...\"}}', not {text}")
    return values


async def drive(runner: Runner, thread_id: str, context: RunContext, payload: Any,
                *, as_json: bool, interactive: bool, checkpoint_id: str | None = None,
                answered: tuple[Sequence[Interrupt], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run until the graph finishes or pauses; answer pauses inline when interactive.

    ``answered``: the pauses ``payload`` answers and its answers; after each run, answers
    that did not decide their pause (another answer was recorded first, or the pause
    moved on before it arrived) are listed in ``not_applied``."""
    lost: list[str] = []
    fresh = isinstance(payload, dict) and "goal" in payload
    known: Any = {} if fresh else (await runner.state(thread_id, checkpoint_id)).values
    while True:
        otel = start_otel_run(runner.settings, thread_id)  # None unless OpenTelemetry export is on
        ended: dict[str, Any] = {"values": {}, "status": "failed", "diagnosis": None, "error": None}
        try:
            with TaskBoard(err, live=not as_json and err.is_terminal, known=known) as board, \
                    trace_run(runner.settings, thread_id), (otel.active() if otel else nullcontext()):
                error = await stream_run(runner, payload, thread_id, context, board, checkpoint_id)
            snapshot = await runner.state(thread_id)
            known = snapshot.values or {}  # the next leg's board starts from this plan
            outcome = summarise(snapshot, thread_id, error)
            ended = {"values": snapshot.values or {}, "status": outcome["status"],
                     "diagnosis": outcome.get("diagnosis"), "error": error}
        finally:
            if otel is not None:  # the spans end with the recorded outcome, and are flushed
                await asyncio.to_thread(otel.finish, ended["values"], ended["status"], ended["diagnosis"],
                                        ended["error"])
        if answered is not None:
            lost += await asyncio.to_thread(not_applied, context.tools(thread_id), answered[0],
                                            answered[1], snapshot.interrupts)
        if lost:
            outcome["not_applied"] = lost
        if outcome["status"] != "interrupted" or not interactive:
            return outcome
        answers = ask_human(snapshot.interrupts)
        answered = (snapshot.interrupts, answers)
        payload = Command(resume=answers)
        checkpoint_id = None


def ask_human(interrupts: Any) -> dict[str, Any]:
    """Ask at the terminal about each pending interrupt, one by one; return the resume map."""
    answers: dict[str, Any] = {}
    for pending in interrupts:
        value = pending.value
        kind = kind_of(value)
        err.print(f"[bold]Paused[/bold] ({escape(str(kind))}, interrupt {escape(pending.id)}):")
        if kind == "plan_review":
            show_plan(value.get("tasks", []), err)
            if value.get("error"):
                err.print(f"[red]{escape(str(value['error']))}[/red]")
            choice = Prompt.ask(escape("Plan: [a]pprove, [e]dit, [r]eject"), choices=["a", "e", "r"],
                                default="a", console=err)
            if choice == "e":
                path = Prompt.ask("Path of the edited plan JSON (a list of tasks)", console=err)
                decision = ReviewDecision("edit", tasks=load_tasks(Path(path)))
            elif choice == "r":
                decision = ReviewDecision("reject", text=Prompt.ask("What should change?", console=err))
            else:
                decision = ReviewDecision("approve")
        elif kind == "tool_approval":
            err.print(describe(value), markup=False, highlight=False)
            ok = Prompt.ask("Allow it?", choices=["y", "n"], default="n", console=err) == "y"
            decision = ReviewDecision("approve") if ok else ReviewDecision("reject", text=Prompt.ask("Why not?", console=err))
        elif kind == "answer_review":
            err.print(value.get("answer", ""), markup=False, highlight=False)
            choice = Prompt.ask(escape("Answer: [a]pprove, [r]eject"), choices=["a", "r"], default="a", console=err)
            decision = ReviewDecision("approve") if choice == "a" else ReviewDecision("reject", text=Prompt.ask("What is wrong?", console=err))
        else:
            err.print(describe(value), markup=False, highlight=False)
            choice = Prompt.ask(escape("[r]etry, [s]kip"), choices=["r", "s"], default="s", console=err)
            decision = ReviewDecision("approve" if choice == "r" else "reject")
        answers[pending.id] = resume_value(value, decision)
    return answers


def show_plan(tasks: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Proposed plan")
    for column in ("id", "agent", "depends on", "instruction"):
        table.add_column(column)
    for t in tasks:
        table.add_row(*(escape(str(c)) for c in (t["id"], t["agent"], ", ".join(t.get("depends_on", [])) or "-", t["instruction"])))
    console.print(table)


def show_pending(interrupts: list[dict[str, Any]], console: Console) -> None:
    """Each pending interrupt: its id and kind, and what it asks (a plan as a table; a tool
    approval with the tool, its arguments and what the agent found)."""
    for pending in interrupts:
        value = pending["value"]
        console.print(f"[bold]Interrupt {escape(pending['id'])}[/bold] ({escape(str(kind_of(value)))})")
        if kind_of(value) == "plan_review":
            show_plan(value.get("tasks", []), console)
        else:
            console.print(describe(value), markup=False, highlight=False)


def print_outcome(outcome: dict[str, Any], as_json: bool) -> int:
    """Print the run's outcome and return its exit code: 1 when one of the answers given
    was not the one applied (each said on its own line on stderr)."""
    code = _print_outcome(outcome, as_json)
    for line in outcome.get("not_applied") or []:  # one line each, never wrapped
        print(f"orchestrator: {line}", file=sys.stderr)
    return 1 if outcome.get("not_applied") else code


def _print_outcome(outcome: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(outcome, indent=2, default=str))
        return EXIT[outcome["status"]]
    m = outcome["metrics"]
    if outcome["status"] == "interrupted":
        show_pending(outcome["interrupts"], out)
        out.print("[yellow]Paused for review.[/yellow] Continue with:")
        out.print(f"  {outcome['resume']}", markup=False, highlight=False)
    else:
        if outcome.get("answer"):
            out.rule("Answer")
            # The answer is text, not markup: its citations ("[refund-policy.md#Amounts L17-24]")
            # would be read as style tags and vanish.
            out.print(outcome["answer"], markup=False, highlight=False)
        if outcome.get("error"):
            out.print(f"[red]Error:[/red] {escape(str(outcome['error']))}\n"
                      f"Resume with: {escape(str(outcome['resume']))}")
    if outcome.get("stop_reason"):
        out.print(f"[magenta]Stopped early:[/magenta] {escape(outcome['stop_reason'])}", highlight=False)
    render_why(outcome.get("diagnosis"), out)
    out.print(
        f"[dim]thread {outcome['thread_id']} · {outcome['status']} · tasks {m['tasks_completed']}/{m['tasks_total']} done,"
        f" {m['tasks_failed']} failed · {m['tokens']} tokens · ${m['cost_usd']:.4f} · {m['latency_s']:.1f}s[/dim]"
    )
    return EXIT[outcome["status"]]


async def cmd_run(settings: Settings, goal: str, thread: str | None, overrides: dict[str, Any],
                  as_json: bool) -> int:
    goal = validate_goal(goal, settings)
    thread_id = validate_thread(thread) if thread else uuid.uuid4().hex[:12]
    async with Runner.open(settings) as runner:
        context = runner.context(overrides)  # validates the flags before anything runs
        if await runner.exists(thread_id):
            raise UsageError(f"thread {thread_id} already exists; use resume, or a new --thread")
        interactive = sys.stdin.isatty() and not as_json
        outcome = await drive(runner, thread_id, context, {"goal": goal},
                              as_json=as_json, interactive=interactive)
    return print_outcome(outcome, as_json)


async def _known_thread(runner: Runner, thread_id: str) -> RunContext:
    """The context the thread runs with; a UsageError for an unknown thread."""
    if not await runner.exists(thread_id):
        settings = runner.settings
        raise UsageError(f"no thread {thread_id!r} in {settings.checkpoint_uri or settings.data_dir}")
    return await runner.resume_context(thread_id)


async def cmd_resume(settings: Settings, thread_id: str, requested: list[Requested], as_json: bool) -> int:
    async with Runner.open(settings) as runner:
        context = await _known_thread(runner, thread_id)
        snapshot = await runner.state(thread_id)
        payload: Any = None
        answered = None
        if snapshot.interrupts:
            answers = resume_map(snapshot.interrupts, requested)
            payload, answered = Command(resume=answers), (snapshot.interrupts, answers)
        elif requested:
            raise UsageError(f"thread {thread_id} is not paused for review; resume it without an answer")
        elif not snapshot.next:
            raise UsageError(f"thread {thread_id} has finished; fork it to run part of it again")
        interactive = sys.stdin.isatty() and not as_json
        outcome = await drive(runner, thread_id, context, payload, as_json=as_json,
                              interactive=interactive, answered=answered)
    return print_outcome(outcome, as_json)


async def cmd_history(settings: Settings, thread_id: str, as_json: bool) -> int:
    rows = []
    async with Runner.open(settings) as runner:
        await _known_thread(runner, thread_id)
        for snap in await runner.history(thread_id):
            results = (snap.values or {}).get("results", {})
            rows.append({
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                "parent_id": (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
                "step": snap.metadata.get("step") if snap.metadata else None,
                "source": snap.metadata.get("source") if snap.metadata else None,
                "created_at": snap.created_at,
                "next": list(snap.next),
                "tasks_done": sum(1 for r in results.values() if r.get("status") == "done"),
                "interrupted": bool(snap.interrupts),
            })
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Checkpoints of {thread_id} (newest first)")
    for column in ("checkpoint", "step", "next", "tasks done", "created"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["checkpoint_id"], str(r["step"]), ", ".join(r["next"]) or "(end)",
                      str(r["tasks_done"]), str(r["created_at"]))
    out.print(table)
    return 0


async def cmd_fork(settings: Settings, thread_id: str, checkpoint_id: str, values: dict[str, Any] | None,
                   run: bool, as_json: bool) -> int:
    """Branch the thread at a checkpoint (optionally editing state), then replay from there."""
    async with Runner.open(settings) as runner:
        await _known_thread(runner, thread_id)
        try:
            fork_id = await runner.fork(thread_id, checkpoint_id, values)
        except (CheckpointNotFound, ForkEditError) as exc:
            raise UsageError(str(exc)) from None
        # The fork's own settings: --auto-approve is not inherited unless given again.
        context = await runner.resume_context(thread_id, fork_id)
        outcome = summarise(await runner.state(thread_id, fork_id), thread_id)
        if run:
            interactive = sys.stdin.isatty() and not as_json
            outcome = await drive(runner, thread_id, context, None, as_json=as_json,
                                  interactive=interactive, checkpoint_id=fork_id)
    outcome["forked_from"] = checkpoint_id
    outcome["fork_checkpoint_id"] = fork_id
    return print_outcome(outcome, as_json)


async def cmd_show(settings: Settings, thread_id: str, as_json: bool) -> int:
    async with Runner.open(settings) as runner:
        await _known_thread(runner, thread_id)
        outcome = summarise(await runner.state(thread_id), thread_id)
    if not as_json:
        show_plan(outcome["plan"], out)
    return print_outcome(outcome, as_json)


def cmd_models(settings: Settings, as_json: bool) -> int:
    from core.models import model_statuses

    statuses = model_statuses(settings)
    if as_json:
        print(json.dumps([s.__dict__ if hasattr(s, "__dict__") else s for s in statuses], indent=2, default=str))
        return 0
    table = Table(title="Models")
    for column in ("name", "provider", "model", "ready", "detail"):
        table.add_column(column)
    for s in statuses:
        table.add_row(s.name, s.provider, s.model, "[green]yes[/green]" if s.ready else "[red]no[/red]", s.detail)
    out.print(table)
    used = sorted({settings.model_name_for(r) for r in ("supervisor", "researcher", "coder", "analyst", "writer", "reviewer", "support")})
    out.print(f"Roles use: {', '.join(used)}")
    return 0


__all__ = ["ConfigError", "UsageError", "load_tasks"]
