"""The CLI's commands: run, resume, history, fork, show, models."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from langgraph.types import Command
from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table

from agents import RunContext
from core.review import ReviewDecision, resume_value
from core.settings import ConfigError, Settings
from core.tracing import trace_run
from graph.history import CheckpointNotFound, ForkEditError
from graph.runner import Runner
from orchestrator.cli.session import EXIT, stream_run, summarise
from orchestrator.cli.view import TaskBoard

out = Console()
err = Console(stderr=True)


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


def validate_goal(goal: str, settings: Settings) -> str:
    """A usable goal, or a UsageError saying why not."""
    goal = goal.strip()
    if not goal:
        raise UsageError("the goal is empty")
    if len(goal) > settings.limits.max_goal_chars:
        raise UsageError(
            f"the goal has {len(goal)} characters; the limit is {settings.limits.max_goal_chars}"
            " (limits.max_goal_chars)"
        )
    return goal


async def drive(runner: Runner, thread_id: str, context: RunContext, payload: Any,
                *, as_json: bool, interactive: bool, checkpoint_id: str | None = None) -> dict[str, Any]:
    """Run until the graph finishes or pauses; answer pauses inline when interactive."""
    while True:
        with TaskBoard(err, live=not as_json and err.is_terminal) as board, \
                trace_run(runner.settings, thread_id):
            error = await stream_run(runner, payload, thread_id, context, board, checkpoint_id)
        snapshot = await runner.state(thread_id)
        outcome = summarise(snapshot, thread_id, error)
        if outcome["status"] != "interrupted" or not interactive:
            return outcome
        payload = Command(resume=ask_human(snapshot.interrupts))
        checkpoint_id = None


def ask_human(interrupts: Any) -> dict[str, Any]:
    """Ask at the terminal for each pending interrupt; return the resume map."""
    answers: dict[str, Any] = {}
    for pending in interrupts:
        value = pending.value
        kind = value.get("type")
        if kind == "plan_review":
            show_plan(value.get("tasks", []), err)
            if value.get("error"):
                err.print(f"[red]{value['error']}[/red]")
            choice = Prompt.ask("Plan: [a]pprove, [e]dit, [r]eject", choices=["a", "e", "r"], default="a", console=err)
            if choice == "e":
                path = Prompt.ask("Path of the edited plan JSON (a list of tasks)", console=err)
                decision = ReviewDecision("edit", tasks=load_tasks(Path(path)))
            elif choice == "r":
                decision = ReviewDecision("reject", text=Prompt.ask("What should change?", console=err))
            else:
                decision = ReviewDecision("approve")
        elif kind == "tool_approval":
            err.print(f"Task {value.get('task_id')} ({value.get('agent')}) wants to run "
                      f"[bold]{value.get('tool')}[/bold] with {json.dumps(value.get('args'))}")
            ok = Prompt.ask("Allow it?", choices=["y", "n"], default="n", console=err) == "y"
            decision = ReviewDecision("approve") if ok else ReviewDecision("reject", text=Prompt.ask("Why not?", console=err))
        elif kind == "answer_review":
            err.print(value.get("answer", ""))
            choice = Prompt.ask("Answer: [a]pprove, [r]eject", choices=["a", "r"], default="a", console=err)
            decision = ReviewDecision("approve") if choice == "a" else ReviewDecision("reject", text=Prompt.ask("What is wrong?", console=err))
        else:
            err.print(f"Task failed: {json.dumps(value, default=str)[:500]}")
            choice = Prompt.ask("[r]etry, [s]kip", choices=["r", "s"], default="s", console=err)
            decision = ReviewDecision("approve" if choice == "r" else "reject")
        answers[pending.id] = resume_value(value, decision)
    return answers


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Edited plan tasks from a JSON file: a list of tasks or an object with "tasks"."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read the plan {path}: {exc}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(tasks, list):
        raise UsageError(f"{path}: expected a list of tasks or an object with a 'tasks' list")
    return tasks


def show_plan(tasks: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Proposed plan")
    for column in ("id", "agent", "depends on", "instruction"):
        table.add_column(column)
    for t in tasks:
        table.add_row(t["id"], t["agent"], ", ".join(t.get("depends_on", [])) or "-", t["instruction"])
    console.print(table)


def print_outcome(outcome: dict[str, Any], as_json: bool) -> int:
    """Print the run's outcome and return its exit code."""
    if as_json:
        print(json.dumps(outcome, indent=2, default=str))
        return EXIT[outcome["status"]]
    m = outcome["metrics"]
    if outcome["status"] == "interrupted":
        for pending in outcome["interrupts"]:
            if pending["value"].get("type") == "plan_review":
                show_plan(pending["value"].get("tasks", []), out)
        out.print(f"[yellow]Paused for review.[/yellow] Continue with:\n  {outcome['resume']}")
    else:
        if outcome.get("answer"):
            out.rule("Answer")
            out.print(outcome["answer"])
        if outcome.get("error"):
            out.print(f"[red]Error:[/red] {outcome['error']}\nResume with: {outcome['resume']}")
    if outcome.get("stop_reason"):
        out.print(f"[magenta]Stopped early:[/magenta] {outcome['stop_reason']}")
    out.print(
        f"[dim]thread {outcome['thread_id']} · {outcome['status']} · tasks {m['tasks_completed']}/{m['tasks_total']} done,"
        f" {m['tasks_failed']} failed · {m['tokens']} tokens · ${m['cost_usd']:.4f} · {m['latency_s']:.1f}s[/dim]"
    )
    return EXIT[outcome["status"]]


async def cmd_run(settings: Settings, goal: str, thread: str | None, overrides: dict[str, Any],
                  as_json: bool) -> int:
    goal = validate_goal(goal, settings)
    thread_id = thread or uuid.uuid4().hex[:12]
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


async def cmd_resume(settings: Settings, thread_id: str, decision: ReviewDecision | None, as_json: bool) -> int:
    async with Runner.open(settings) as runner:
        context = await _known_thread(runner, thread_id)
        snapshot = await runner.state(thread_id)
        payload: Any = None
        if snapshot.interrupts:
            if decision is None:
                raise UsageError("the run is paused for review: pass --approve, --edit PLAN.json or --reject \"feedback\"")
            payload = Command(resume={i.id: resume_value(i.value, decision) for i in snapshot.interrupts})
        elif not snapshot.next:
            raise UsageError(f"thread {thread_id} has finished; fork it to run part of it again")
        interactive = sys.stdin.isatty() and not as_json
        outcome = await drive(runner, thread_id, context, payload, as_json=as_json, interactive=interactive)
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
        context = await _known_thread(runner, thread_id)
        try:
            fork_id = await runner.fork(thread_id, checkpoint_id, values)
        except (CheckpointNotFound, ForkEditError) as exc:
            raise UsageError(str(exc)) from None
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


__all__ = ["ConfigError", "UsageError"]
