"""Running the supervisor from the CLI: stream a run, then summarise where it stands."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from agents import RunContext
from core.review import kind_of
from core.usage import run_metrics
from graph.runner import Runner
from graph.synthesis import final_status
from orchestrator.cli.view import TaskBoard
from orchestrator.observability.diagnosis import diagnose

EXIT = {"completed": 0, "failed": 1, "interrupted": 3, "stopped": 4}
"""Exit codes by final status (2 is a usage or configuration error). ``stopped`` (4): the run
ended with an answer but tasks of its plan not done (a budget, a cap, a failure escalation
gave up on); ``stop_reason`` says why."""


async def stream_run(runner: Runner, payload: Any, thread_id: str, context: RunContext,
                     board: TaskBoard, checkpoint_id: str | None = None) -> str | None:
    """Stream one run to the board; return the error text if the run raised."""
    try:
        stream = runner.stream(payload, thread_id, context, checkpoint_id=checkpoint_id)
        async for mode, chunk in stream:
            if mode == "custom" and isinstance(chunk, dict):
                board.on_event(chunk)
    except Exception as err:  # the checkpoint keeps every finished step; report and stop
        return f"{type(err).__name__}: {err}"
    return None


def summarise(snapshot: StateSnapshot, thread_id: str, error: str | None = None) -> dict[str, Any]:
    """The run's outcome as the JSON object the CLI prints."""
    values = snapshot.values or {}
    results = values.get("results", {})
    interrupts = [{"id": i.id, "value": i.value} for i in snapshot.interrupts]
    reason = str(values.get("stop_reason") or "")
    if interrupts:
        status = "interrupted"
    elif values.get("status") in ("completed", "stopped") and not error and not snapshot.next:
        status, reason = final_status(values)  # threads saved before `stopped` read truthfully too
    else:
        status = "failed"
    plan = [
        {
            **task,
            # The agent that ran it, when worker selection or escalation chose another.
            "agent": results.get(task["id"], {}).get("task", {}).get("agent", task["agent"]),
            "planned_agent": task["agent"],
            "status": results.get(task["id"], {}).get("status", "pending"),
        }
        for task in values.get("tasks", [])
    ]
    outcome: dict[str, Any] = {
        "thread_id": thread_id,
        "status": status,
        "goal": values.get("goal", ""),
        "plan": plan,
        "plan_versions": len(values.get("plan_versions", [])),
        "answer": values.get("answer", ""),
        "stop_reason": reason,
        "metrics": run_metrics(values),
        "interrupts": interrupts,
        "checkpoint_id": snapshot.config["configurable"].get("checkpoint_id"),
    }
    if status in ("completed", "stopped", "failed") and not snapshot.next:
        why = diagnose(values, status)
        if why["run"] or why["tasks"]:  # a run that completed without escalations has none
            outcome["diagnosis"] = why
    if error:
        outcome["error"] = error
    if status != "completed":
        outcome["resume"] = resume_hint(thread_id, interrupts)
    return outcome


def resume_hint(thread_id: str, interrupts: list[dict[str, Any]]) -> str:
    """The command that continues this run (each interrupt answered by id when several wait)."""
    if not interrupts:
        return f"orchestrator resume {thread_id}"
    kinds = {kind_of(i["value"]) for i in interrupts}
    if len(interrupts) == 1:
        if kinds == {"plan_review"}:
            return f"orchestrator resume {thread_id} (--approve | --edit PLAN.json | --reject \"feedback\")"
        return f"orchestrator resume {thread_id} (--approve | --reject \"reason\")"
    return f"orchestrator resume {thread_id} --approve ID ... --reject ID \"reason\" ... (one per interrupt id)"
