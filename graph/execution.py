"""Execution: pick ready tasks, fan them out in parallel, run each on its specialist.

Each task is its own node execution (a ``Send``), so each result is checkpointed on its
own: after a crash mid-fan-out only the tasks that were in flight run again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from agents import AgentSpec, RunContext, build_specialist
from core.redact import without_secrets
from core.settings import ModelConfig
from core.tracing import tracing_config
from core.usage import TokenBudgetExceeded, UsageTracker, cost_usd, track_usage
from graph import result_cache
from graph.context import dependency_context
from graph.controls import stop_reason
from graph.runtime import context_for, emit, run_context, settings_update
from graph.state import OrchestratorState, Task, TaskMetrics, TaskRecord, TaskStatus

CONTEXT_SHARE = 0.4
"""Share of a worker model's context window given to its dependencies' results."""


class WorkerPayload(TypedDict):
    """What one ``run_task`` execution receives."""

    task: dict[str, Any]
    goal: str
    context: str
    feedback: str
    exclude: list[str]
    """Agents that already failed this task (worker selection avoids them)."""
    run_settings: dict[str, Any]
    """The thread's stored setting overrides (a ``Send`` carries no state)."""


def status_of(results: dict[str, TaskRecord], task_id: str) -> TaskStatus:
    """A task's status on the blackboard; absent means pending."""
    return results.get(task_id, {}).get("status", "pending")


def blocked_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> dict[str, TaskRecord]:
    """Pending tasks that can never run because a dependency failed or was skipped."""
    skipped: dict[str, TaskRecord] = {}
    changed = True
    while changed:  # propagate down chains of dependents
        changed = False
        for task in tasks:
            if task.id in skipped or status_of(results, task.id) != "pending":
                continue
            dead = [
                d for d in task.depends_on
                if status_of(results, d) in ("failed", "skipped") or d in skipped
            ]
            if dead:
                skipped[task.id] = TaskRecord(
                    task=task.model_dump(), status="skipped",
                    error=f"dependency {', '.join(dead)} did not complete",
                )
                changed = True
    return skipped


def ready_tasks(tasks: list[Task], results: dict[str, TaskRecord]) -> list[Task]:
    """Pending tasks whose dependencies are all done."""
    return [
        t for t in tasks
        if status_of(results, t.id) == "pending"
        and all(status_of(results, d) == "done" for d in t.depends_on)
    ]


async def dispatch(
    state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[Literal["run_task", "synthesize"]]:
    """Start every ready task (up to max_concurrency) in parallel, or move on to synthesis."""
    settings, registry = await run_context(runtime, state)
    tasks = [Task.model_validate(t) for t in state.get("tasks", [])]
    results = dict(state.get("results", {}))
    skipped = blocked_tasks(tasks, results)
    results.update(skipped)
    ready = ready_tasks(tasks, results)
    rounds = state.get("rounds", 0)

    reason = stop_reason(state, settings) if ready else None
    if reason or not ready:
        if reason:
            emit("stopped", reason=reason)
        return Command(goto="synthesize", update={"results": skipped, "stop_reason": reason or ""})

    batch = ready[: settings.limits.max_concurrency]
    update: dict[str, TaskRecord] = dict(skipped)
    sends = []
    for task in batch:
        previous = results.get(task.id, {})
        exclude = list(previous.get("failed_agents", []))
        worker = registry.select(task, settings.worker_selection, exclude=frozenset(exclude))
        budget = int(settings.model_for(worker.model_role).context_window * CONTEXT_SHARE)
        update[task.id] = TaskRecord(
            task=task.model_dump(), status="running", attempts=previous.get("attempts", 0) + 1,
        )
        sends.append(
            Send(
                "run_task",
                WorkerPayload(
                    task=task.model_dump(),
                    goal=state["goal"],
                    context=dependency_context(task, results, budget),
                    feedback=str(previous.get("feedback", "")),
                    exclude=exclude,
                    run_settings=without_secrets(context_for(runtime, state).overrides),
                ),
            )
        )
    emit("round", round=rounds + 1, tasks=[t.id for t in batch])
    stored = settings_update(runtime, state)  # a fork or resume that came with new settings
    return Command(goto=sends, update={"results": update, "rounds": rounds + 1, **stored})


async def run_task(
    payload: WorkerPayload, config: RunnableConfig, runtime: Runtime[RunContext]
) -> dict[str, Any]:
    """Run one task on its specialist sub-graph and record the outcome and its cost."""
    ctx = context_for(runtime, payload)
    settings, registry = ctx.settings, await ctx.registry()
    task = Task.model_validate(payload["task"])
    spec = registry.select(task, settings.worker_selection, exclude=frozenset(payload["exclude"]))
    history: list[str] = []
    if spec.name != task.agent:
        history.append(f"assigned to {spec.name} instead of {task.agent}")
        task = task.model_copy(update={"agent": spec.name})
    model_name = settings.model_name_for(spec.model_role)
    key = result_cache.cache_key(spec.name, model_name, task.model_dump(), payload["context"], payload["feedback"])
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else 1
    emit("task_started", task_id=task.id, agent=spec.name, attempt=attempt)

    started = time.time()
    cached = await result_cache.lookup(settings, key)
    with track_usage(settings.budgets.task_tokens) as usage:
        if cached is not None:
            out: dict[str, Any] = cached
        else:
            out = await _run_specialist(spec, task, payload, config, ctx)
    ended = time.time()

    error = out.get("error")
    output = str(out.get("output") or "")
    if not error and not output.strip():
        error = "the agent returned an empty result"
    status: TaskStatus = "failed" if error else "done"
    if status == "done" and cached is None:
        await result_cache.store(settings, key, {k: out.get(k) for k in ("output", "citations", "artifacts")})
    verification = out.get("verification")
    if verification:
        history.append(
            "verification " + ("passed" if verification.get("passed") else "failed")
            + (f": {verification.get('feedback')}" if verification.get("feedback") else "")
        )
    metrics = TaskMetrics(
        model=model_name, started_at=started, ended_at=ended, latency_s=round(ended - started, 6),
        retries=attempt - 1, cache_hit=cached is not None,
        **_usage(out, usage, settings.model_for(spec.model_role), cached is not None),
    )
    record = TaskRecord(
        task=task.model_dump(), status=status, output=output,
        citations=list(out.get("citations") or []), artifacts=list(out.get("artifacts") or []),
        error=error, metrics=metrics, history=history,
    )
    emit("task_finished", task_id=task.id, agent=spec.name, status=status, error=error,
         latency_s=metrics["latency_s"], tokens=metrics["tokens_in"] + metrics["tokens_out"],
         cache_hit=cached is not None)
    return {"results": {task.id: record}}


def _usage(out: dict[str, Any], tracker: UsageTracker, price: ModelConfig, cached: bool) -> TaskMetrics:
    """The task's usage: the sub-graph's own count, which is checkpointed and so survives a
    pause for approval (the tracker only sees calls since the last resume)."""
    if cached:
        return TaskMetrics(tokens_in=0, tokens_out=0, model_calls=0, cost_usd=0.0)
    counted = out.get("usage")
    if not counted:
        return tracker.metrics(price)
    tokens_in, tokens_out = int(counted.get("tokens_in", 0)), int(counted.get("tokens_out", 0))
    return TaskMetrics(tokens_in=tokens_in, tokens_out=tokens_out,
                       model_calls=int(counted.get("model_calls", 0)),
                       cost_usd=cost_usd(tokens_in, tokens_out, price))


async def _run_specialist(spec: AgentSpec, task: Task, payload: WorkerPayload,
                          config: RunnableConfig, ctx: RunContext) -> dict[str, Any]:
    """The specialist's output; a spent task budget becomes a failure, not a crash."""
    wall_s = ctx.settings.budgets.task_wall_s
    run = build_specialist(spec).ainvoke(
        {"task": task.model_dump(), "goal": payload["goal"], "context": payload["context"],
         "feedback": payload["feedback"]},
        merge_configs(config, cast(RunnableConfig, tracing_config(task, spec, config))),  # names the trace per task
        context=ctx,  # the thread's context, also when this run came without one
    )
    try:
        return dict(await asyncio.wait_for(run, timeout=wall_s))
    except TimeoutError:
        return {"error": f"budget: task_wall_s ({wall_s}) exceeded"}
    except TokenBudgetExceeded as err:
        return {"error": str(err)}


async def task_crashed(payload: WorkerPayload, error: NodeError) -> Command[Literal["assess"]]:
    """A task whose node raised after its retries: record the failure, keep the run going."""
    task = payload["task"]
    message = f"{type(error.error).__name__}: {error.error}"
    emit("task_finished", task_id=task["id"], agent=task["agent"], status="failed", error=message)
    record = TaskRecord(task=task, status="failed", error=message, history=[f"crashed: {message}"])
    # The error handler is its own node: without the goto, assess would never run.
    return Command(goto="assess", update={"results": {task["id"]: record}})
