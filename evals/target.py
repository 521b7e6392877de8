"""The evaluation target: run one goal through the real supervisor graph and report it.

Every example runs on its own thread and its own data directory (``<root>/<thread>``), so
the customer database, workspace and knowledge-base index start fresh and refunds issued
by one example never leak into another. Reviews are off (nothing waits for a human) and
the result cache is off (every example does its own work). For ``plan_only`` targets the
plan review stays on: the run pauses right after planning and only the plan is reported.
The references were written for the shipped knowledge base and sample database, so a
configured ``knowledge_base_dir``, ``customer_db``, ``state_uri`` or ``workspace_root`` is
overridden for eval runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.memory import InMemorySaver

from agents import base_settings
from core.settings import Settings
from core.usage import run_metrics
from graph.persistence import open_checkpointer
from graph.runner import Runner
from graph.supervisor import build_graph

MAX_FILE_CHARS = 100_000
MAX_FILES = 20
MAX_OUTPUT_CHARS = 4000
RAN = ("done", "failed")
CUSTOMER_DB_FILE = "customer_service.sqlite"

Target = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class TargetConfig:
    """How eval runs are started."""

    root: Path
    """Directory under which each run gets its own data directory."""
    model: str | None = None
    """Model for every role (None = the configured one)."""
    plan_only: bool = False
    """Stop at the plan review: only plan (planning datasets)."""
    timeout_s: float | None = None
    """Wall-clock limit per example; the run's state so far is still reported."""
    checkpointer: Literal["memory", "sqlite"] = "memory"
    """InMemorySaver, or a SQLite file in the run's data directory (kept for inspection)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Further setting overrides for every run."""

    def options(self, data_dir: Path | None = None) -> dict[str, Any]:
        """The per-run setting overrides (``configurable["settings"]``)."""
        options: dict[str, Any] = {
            "review": {
                "plan": self.plan_only,
                "high_risk_tools": False,
                "final_answer": False,
                "failures": False,
            },
            "cache_results": False,
            "knowledge_base_dir": None,
            "customer_db": None,
            # eval runs act on their own sample copy and workspaces, never on shared state
            "state_uri": None,
            "workspace_root": None,
            **self.overrides,
        }
        if self.model:
            options["model"] = self.model
        if data_dir is not None:
            options["data_dir"] = str(data_dir)
        return options

    def settings(self, base: Settings | None = None) -> Settings:
        """The settings runs will use (validates the overrides; raises ConfigError)."""
        return (base or base_settings()).with_overrides(self.options(self.root))


# -- reading a run's results ---------------------------------------------------------------


def trajectory(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One step per task on the blackboard, ordered by start time (tasks that never ran last)."""
    steps = []
    for task_id, record in (values.get("results") or {}).items():
        task = record.get("task") or {}
        metrics = record.get("metrics") or {}
        steps.append(
            {
                "task_id": task_id,
                "agent": task.get("agent", ""),
                "status": record.get("status", "pending"),
                "depends_on": list(task.get("depends_on") or []),
                "started_at": metrics.get("started_at"),
                "ended_at": metrics.get("ended_at"),
                "latency_s": metrics.get("latency_s"),
            }
        )
    return sorted(
        steps, key=lambda s: (s["started_at"] is None, s["started_at"] or 0.0, s["task_id"])
    )


PROJECT_DOCS = ("design.json", "DESIGN.md", "README.md")
"""Top-level documents a project run writes, read beside the Python files."""


def workspace_files(workspace: Path) -> dict[str, str]:
    """Python files the run left in its workspace, and a project's design and README
    (relative path -> text), bounded."""
    if not workspace.is_dir():
        return {}
    files: dict[str, str] = {}
    docs = [workspace / name for name in PROJECT_DOCS]
    for path in [*sorted(workspace.rglob("*.py")), *docs]:
        if (
            len(files) >= MAX_FILES
            or "__pycache__" in path.parts
            or not path.is_file()
            or path.is_symlink()
        ):
            continue
        try:
            files[path.relative_to(workspace).as_posix()] = path.read_text(
                encoding="utf-8", errors="replace"
            )[:MAX_FILE_CHARS]
        except OSError:
            continue
    return files


def _seed_state() -> tuple[set[int], dict[str, str], dict[str, int]]:
    from tools.context import CUSTOMER_SEED_SQL

    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(CUSTOMER_SEED_SQL.read_text(encoding="utf-8"))
        return _db_state(conn)
    finally:
        conn.close()


def _db_state(conn: sqlite3.Connection) -> tuple[set[int], dict[str, str], dict[str, int]]:
    refunds = {int(r[0]) for r in conn.execute("SELECT id FROM refunds")}
    tickets = {str(r[0]): str(r[1]) for r in conn.execute("SELECT id, status FROM tickets")}
    notes = {
        str(r[0]): int(r[1])
        for r in conn.execute("SELECT ticket_id, COUNT(*) FROM ticket_notes GROUP BY ticket_id")
    }
    return refunds, tickets, notes


def db_changes(db_path: Path) -> dict[str, Any] | None:
    """What a run changed in its customer database, against a fresh copy of the seed:
    new refunds, tickets whose status changed, notes added. None if never created."""
    if not db_path.is_file():
        return None
    seed_refunds, seed_tickets, seed_notes = _seed_state()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        _, tickets, notes = _db_state(conn)
        rows = conn.execute(
            "SELECT id, order_id, amount_cents, reason FROM refunds ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return {
        "refunds": [
            {"order_id": r[1], "amount_cents": int(r[2]), "reason": r[3]}
            for r in rows
            if int(r[0]) not in seed_refunds
        ],
        "tickets": {
            tid: {"from": seed_tickets.get(tid), "to": status}
            for tid, status in tickets.items()
            if seed_tickets.get(tid) != status
        },
        "notes_added": {
            tid: n - seed_notes.get(tid, 0)
            for tid, n in notes.items()
            if n > seed_notes.get(tid, 0)
        },
    }


def collect(
    values: Mapping[str, Any],
    *,
    thread_id: str,
    data_dir: Path,
    interrupted: bool,
    plan_only: bool,
    error: str | None = None,
    timed_out: bool = False,
) -> dict[str, Any]:
    """The target's output for one run, from the graph's final (or paused) state; a run cut
    off by the example's time limit is ``time-out`` whatever its state said then."""
    results: Mapping[str, Any] = values.get("results") or {}
    steps = trajectory(values)
    citations: list[str] = []
    artifacts: list[str] = []
    task_outputs = []
    for step in steps:
        record = results.get(step["task_id"]) or {}
        citations += [c for c in record.get("citations") or [] if c not in citations]
        artifacts += [a for a in record.get("artifacts") or [] if a not in artifacts]
        if record.get("status") in RAN:
            task_outputs.append(
                {
                    "task_id": step["task_id"],
                    "agent": step["agent"],
                    "status": record.get("status"),
                    "output": str(record.get("output") or "")[:MAX_OUTPUT_CHARS],
                    "error": record.get("error"),
                }
            )
    if interrupted and plan_only:
        status = "planned"
    elif interrupted:
        status = "interrupted"
    else:
        status = str(values.get("status") or "failed")
    if timed_out and status not in ("interrupted", "planned"):
        status = "time-out"
    elif error and status in ("completed", "stopped", "running"):
        status = "failed"
    versions = values.get("plan_versions") or []
    return {
        "thread_id": thread_id,
        "status": status,
        "stop_reason": values.get("stop_reason") or "",
        "error": error,
        "answer": values.get("answer") or "",
        "plan": list(values.get("tasks") or []),
        "plan_reason": versions[-1]["reason"] if versions else "",
        "plan_versions": len(versions),
        "planner_attempts": int(values.get("planner_attempts") or 0),
        "agents": [s["agent"] for s in steps if s["status"] in RAN],
        "trajectory": steps,
        "citations": citations,
        "artifacts": artifacts,
        "files": workspace_files(data_dir / "workspaces" / thread_id),
        "task_outputs": task_outputs,
        "metrics": dict(run_metrics(values)),
        "db_changes": db_changes(data_dir / CUSTOMER_DB_FILE),
    }


# -- running -------------------------------------------------------------------------------


def seed_workspace(workspace: Path, files: Mapping[str, str]) -> None:
    """Write an example's input files (name -> text) into the run's workspace; a name that
    would leave the workspace is refused with a one-line error."""
    root = workspace.resolve()
    for name, text in files.items():
        target = (root / name).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"input file {name!r} is outside the workspace")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


async def run_goal(
    goal: str,
    config: TargetConfig,
    *,
    thread_id: str | None = None,
    files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``goal`` through the supervisor graph and return the target output; ``files``
    (name -> text) are in the run's workspace when it starts."""
    thread_id = thread_id or f"eval-{uuid.uuid4().hex[:12]}"
    data_dir = config.root / thread_id
    data_dir.mkdir(parents=True, exist_ok=True)
    if files:
        seed_workspace(data_dir / "workspaces" / thread_id, files)
    error: str | None = None
    timed_out = False
    async with AsyncExitStack() as stack:
        if config.checkpointer == "sqlite":
            saver: Any = await stack.enter_async_context(
                open_checkpointer(base_settings().with_overrides({"data_dir": str(data_dir)}))
            )
        else:
            saver = InMemorySaver()
        runner = Runner(build_graph(checkpointer=saver), base_settings())
        started = time.monotonic()
        try:
            async with asyncio.timeout(config.timeout_s):
                await runner.run(goal, thread_id, config.options(data_dir))
        except TimeoutError:
            error, timed_out = f"timed out after {config.timeout_s:g}s", True
        except Exception as exc:  # the run's state so far is still worth grading
            error = f"{type(exc).__name__}: {exc}"[:1000]
        snapshot = await runner.state(thread_id)
    values = dict(snapshot.values or {})
    output = collect(
        values,
        thread_id=thread_id,
        data_dir=data_dir,
        interrupted=bool(snapshot.interrupts),
        plan_only=config.plan_only,
        error=error,
        timed_out=timed_out,
    )
    output["wall_s"] = round(time.monotonic() - started, 3)
    return output


def make_target(config: TargetConfig) -> Target:
    """An async ``inputs -> outputs`` function for langsmith's ``aevaluate``."""

    async def orchestrator_run(inputs: dict[str, Any]) -> dict[str, Any]:
        return await run_goal(str(inputs["goal"]), config, files=inputs.get("files") or None)

    return orchestrator_run
