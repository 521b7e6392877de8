"""``orchestrator``: run goals, answer reviews, inspect, fork and replay runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from core.settings import ConfigError, Settings, load_settings
from orchestrator.cli.answers import Requested, from_flags


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    p.add_argument("--config", help="settings file (default: ./orchestrator.toml if present)")
    p.add_argument("--data-dir", help="where checkpoints, cache and workspaces live")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="plan and run a goal")
    run.add_argument("goal")
    run.add_argument("--model", help="model for every role: local, local-1.5b, test or a configured name")
    run.add_argument("--thread", help="thread id (default: a new one)")
    run.add_argument("--auto-approve", action="store_true", help="skip every human review")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--url", help="run on a LangGraph server (langgraph dev) at this URL")

    resume = sub.add_parser("resume", help="answer a pause, or continue after a crash")
    resume.add_argument("thread")
    resume.add_argument("--approve", nargs="?", const=None, action="append", metavar="ID",
                        help="approve interrupt ID (or the only pending one); repeatable")
    resume.add_argument("--reject", nargs="+", action="append", metavar="ID_OR_WHY",
                        help='reject: --reject ID "why", or --reject "why" for the only pending one')
    resume.add_argument("--edit", nargs="+", action="append", metavar="ID_OR_PLAN",
                        help="replace the plan: --edit [ID] PLAN.json")
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--url", help="the LangGraph server the thread lives on")

    for name, text in (("history", "list a thread's checkpoints"), ("show", "show a thread's state")):
        s = sub.add_parser(name, help=text)
        s.add_argument("thread")
        s.add_argument("--json", action="store_true")

    fork = sub.add_parser("fork", help="branch a thread at a checkpoint and replay from it")
    fork.add_argument("thread")
    fork.add_argument("--checkpoint", required=True)
    fork.add_argument("--set", metavar="JSON", help="state values to change at the fork, as JSON")
    fork.add_argument("--no-run", action="store_true", help="only create the branch")
    fork.add_argument("--json", action="store_true")

    models = sub.add_parser("models", help="list the configured models and whether each is ready")
    models.add_argument("--json", action="store_true")

    from orchestrator.cli import eval_command, reporting

    reporting.add_parsers(sub)
    eval_command.add_parsers(sub)
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Setting overrides from flags: they travel with the run (never secrets)."""
    options: dict[str, Any] = {}
    if getattr(args, "model", None):
        options["model"] = args.model
    if getattr(args, "auto_approve", False):
        options["review"] = {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False}
    return options


def _requested(args: argparse.Namespace) -> list[Requested]:
    """The answers ``resume``'s flags give, each for one interrupt id (or the only one)."""
    return from_flags(args.approve, args.reject, args.edit)


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli import commands as c

    interactive = sys.stdin.isatty() and not getattr(args, "json", False)
    if args.command == "run":
        options = _overrides(args)
        if args.url:  # the server validates the options against its own configuration
            from orchestrator.cli.remote import run_remote

            goal = c.validate_goal(args.goal, settings)
            if args.thread:
                c.validate_thread(args.thread)
            outcome = await run_remote(args.url, goal, args.thread, options, args.json, interactive)
            return c.print_outcome(outcome, args.json)
        return await c.cmd_run(settings, args.goal, args.thread, options, args.json)
    if args.command == "resume":
        if args.url:
            from orchestrator.cli.remote import resume_remote

            outcome = await resume_remote(args.url, args.thread, _requested(args), args.json, interactive)
            return c.print_outcome(outcome, args.json)
        return await c.cmd_resume(settings, args.thread, _requested(args), args.json)
    if args.command == "history":
        return await c.cmd_history(settings, args.thread, args.json)
    if args.command == "show":
        return await c.cmd_show(settings, args.thread, args.json)
    if args.command == "fork":
        values = c.fork_values(args.set)
        return await c.cmd_fork(settings, args.thread, args.checkpoint, values, not args.no_run, args.json)
    if args.command == "models":
        return c.cmd_models(settings, args.json)
    from orchestrator.cli import eval_command, reporting

    for extension in (reporting, eval_command):
        if (code := await extension.dispatch(args, settings)) is not None:
            return code
    raise c.UsageError(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orchestrator`` console script."""
    args = _parser().parse_args(argv)
    from orchestrator.cli.commands import UsageError

    try:
        settings = load_settings(config_file=args.config)
        if args.data_dir:  # the base of every run: its nodes get it through the run context
            settings = settings.with_overrides({"data_dir": args.data_dir})
        return asyncio.run(_dispatch(args, settings))
    except (ConfigError, UsageError) as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("orchestrator: interrupted; every finished step is checkpointed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
