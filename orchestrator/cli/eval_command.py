"""``orchestrator eval``: run the evaluation datasets through the orchestrator and gate them.

Wiring (in ``orchestrator/cli/__init__.py``)::

    from orchestrator.cli import eval_command
    eval_command.add_parsers(sub)                                   # in _parser()
    if (code := await eval_command.dispatch(args, settings)) is not None:
        return code                                                 # first thing in _dispatch()

``--split dev|test|all`` selects the examples (default ``all``): tune on ``dev``, report
``test`` (the README's figures are test-split scores; a paraphrase is in its original's
split). ``--per-example`` adds a table with each example's outcome checks and whether it
passed; it is always shown for a held-out dataset.

Exit codes: 0 every threshold met, 1 a score missed its threshold, 2 bad usage or
configuration (unknown dataset, model or example).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.settings import Settings


def add_parsers(subparsers: Any) -> None:
    """Add the ``eval`` sub-command to the CLI's sub-parsers."""
    p = subparsers.add_parser(
        "eval",
        help="run evaluation datasets (offline; a LangSmith experiment when LANGSMITH_API_KEY is set)",
        description=(
            "Run evaluation datasets through the orchestrator with langsmith's evaluate, print a "
            "score table per dataset, write JSON results and exit 1 when a score misses the "
            "dataset's threshold."
        ),
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="NAME",
        help="dataset to run: a shipped name or a JSONL file in the same format (repeatable; "
        "default: all shipped)",
    )
    p.add_argument(
        "--model", help="model for every role: local, local-1.5b, test or a configured name"
    )
    p.add_argument(
        "--judge-model",
        metavar="NAME",
        help="model for the LLM judge (default: the judge role's model)",
    )
    p.add_argument(
        "--example", action="append", metavar="ID", help="only this example (repeatable)"
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="only the first N examples of each dataset"
    )
    p.add_argument(
        "--split",
        choices=("dev", "test", "all"),
        default="all",
        help="examples to run: dev (tune on it), test (report it) or all (default)",
    )
    p.add_argument(
        "--per-example",
        action="store_true",
        help="also print one row per example: its outcome checks and pass/fail "
        "(always on for held-out datasets)",
    )
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="examples run at once (default 1)"
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit per example")
    p.add_argument(
        "--output",
        metavar="PATH",
        help="JSON results file (default: data_dir/evals/eval-<time>.json)",
    )
    p.add_argument(
        "--offline", action="store_true", help="never upload, even with LANGSMITH_API_KEY set"
    )
    p.add_argument("--keep-runs", action="store_true", help="keep each example's data directory")
    p.add_argument(
        "--checkpointer",
        choices=("memory", "sqlite"),
        default="memory",
        help="checkpoint eval runs in memory (default) or in a SQLite file per example",
    )
    p.add_argument("--list", action="store_true", help="list the datasets and exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")


def _usage(message: str) -> Exception:
    from orchestrator.cli.commands import UsageError

    return UsageError(message)


def _list(as_json: bool) -> int:
    from evals.datasets import dataset_names, load_dataset

    rows: list[dict[str, Any]] = []
    for name in dataset_names():
        ds = load_dataset(name)
        rows.append(
            {
                "name": name,
                "version": ds.version,
                "kind": ds.kind,
                "examples": len(ds.examples),
                "dev": ds.split_counts().get("dev", 0),
                "test": ds.split_counts().get("test", 0),
                "description": ds.entry.description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Evaluation datasets")
    columns = ("name", "version", "kind", "examples", "dev", "test", "description")
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(*(str(r[c]) for c in columns))
    Console().print(table)
    return 0


def _heldout(name: str) -> bool:
    from evals.datasets import DatasetError, load_manifest

    try:
        entry = load_manifest().get(name)
    except DatasetError:
        return False
    return bool(entry and entry.heldout)


async def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run ``orchestrator eval``; None when ``args`` is another command."""
    if getattr(args, "command", None) != "eval":
        return None
    from rich.console import Console

    from evals.datasets import DatasetError, dataset_names, is_dataset_path
    from evals.runner import (
        render_examples,
        render_table,
        results_payload,
        run_eval,
        write_json,
    )

    if args.list:
        return _list(args.json)
    if args.limit is not None and args.limit < 1:
        raise _usage("--limit must be at least 1")
    if args.concurrency < 1:
        raise _usage("--concurrency must be at least 1")
    try:
        known = dataset_names()
    except DatasetError as exc:
        raise _usage(str(exc)) from None
    names = args.dataset or known
    unknown = [n for n in names if n not in known and not is_dataset_path(n)]
    if unknown:
        raise _usage(f"unknown dataset(s) {unknown}; known: {', '.join(known)}")
    console = Console(stderr=True) if args.json else Console()
    reports = []
    for name in names:
        try:
            report = await run_eval(
                name,
                settings,
                model=args.model,
                judge_name=args.judge_model,
                example_ids=args.example or (),
                limit=args.limit,
                split=args.split,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                offline=True if args.offline else None,
                keep_runs=args.keep_runs,
                checkpointer=args.checkpointer,
            )
        except DatasetError as exc:
            raise _usage(str(exc)) from None
        console.print(render_table(report))
        if args.per_example or _heldout(name):
            console.print(render_examples(report))
        if report.paraphrase_gaps:
            console.print(
                "paraphrase − original: "
                + " · ".join(f"{k} {v:+.3g}" for k, v in report.paraphrase_gaps.items())
            )
        st = report.structured
        if st.get("calls"):
            console.print(
                f"structured calls: {st['calls']} · invalid outputs {st['invalid_outputs']} · "
                f"repair retries {st['repair_retries']} · failures {st['failures']}"
            )
        failed = [g for g in report.gates if not g.passed]
        for gate in failed:
            shown = "no scores" if gate.value is None else f"{gate.value:.3g}"
            console.print(
                f"[red]{name}: {gate.key} = {shown}, needs {'≥' if gate.bound == 'min' else '≤'} {gate.threshold:g}[/red]"
            )
        if report.uploaded:
            console.print(f"LangSmith experiment: {report.experiment}")
        reports.append(report)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (
        Path(args.output)
        if args.output
        else Path(settings.data_dir) / "evals" / f"eval-{stamp}.json"
    )
    payload = results_payload(reports)
    write_json(payload, path)
    if args.json:
        print(json.dumps({**payload, "results_file": str(path)}, indent=2, default=str))
    else:
        console.print(f"Results: {path}")
    return 0 if payload["passed"] else 1
