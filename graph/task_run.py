"""One task on its specialist sub-graph: the worker's run, its outcome, its cost.

``run_task`` is what a dispatch step's call (graph/execution.py) runs once the scheduler
lets the task start: on the agent the step chose (worker selection), it consults the result cache,
runs the specialist's compiled sub-graph under the task's budgets, and returns the task's
record (status, output, citations, artifacts, metrics, history).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.runtime import Runtime
from langgraph.types import Durability

from agents import AgentSpec, RunContext, build_specialist
from agents.run_context import thread_id_of
from agents.toolset import guard_actions
from core.settings import ModelConfig
from core.tracing import tracing_config
from core.usage import TokenBudgetExceeded, UsageTracker, attempt_key, cost_usd, track_usage
from graph import result_cache
from graph.runtime import context_for, emit
from graph.state import Task, TaskMetrics, TaskRecord, TaskStatus


class WorkerPayload(TypedDict):
    """What one task's run receives."""

    task: dict[str, Any]
    goal: str
    context: str
    feedback: str
    exclude: list[str]
    """Agents that already failed this task (worker selection avoids them)."""
    agent: str
    """The agent worker selection chose for this attempt (the step chose it when it let the
    task start, to size the dependency context for that agent's model)."""
    run_settings: dict[str, Any]
    """The thread's stored setting overrides (the task runs outside the graph's state)."""
    model: str
    """The model this attempt runs on: a stronger tier escalation chose, or "" for the
    agent's role model."""


async def run_task(
    payload: WorkerPayload, config: RunnableConfig, runtime: Runtime[RunContext]
) -> dict[str, Any]:
    """Run one task on its specialist sub-graph and record the outcome and its cost."""
    ctx = context_for(runtime, payload)
    settings, registry = ctx.settings, await ctx.registry()
    task = Task.model_validate(payload["task"])
    spec = registry.get(payload["agent"])
    history: list[str] = []
    if spec.name != task.agent:
        history.append(f"assigned to {spec.name} instead of {task.agent}")
        task = task.model_copy(update={"agent": spec.name})
    model_name = payload.get("model") or settings.model_name_for(spec.model_role)
    if model_name != settings.model_name_for(spec.model_role):
        ctx = ctx.with_role_model(spec.model_role, model_name)
        settings = ctx.settings
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else 1
    emit("task_started", task_id=task.id, agent=spec.name, attempt=attempt, model=model_name)

    started = time.time()
    # Result cache (effects helper): never for agents with side effects; a hit is recorded.
    key, cached = await result_cache.lookup(
        settings, spec, ctx.tools(thread_id_of(config)), payload["goal"], task.model_dump(),
        payload["context"], payload["feedback"])
    if cached is not None:
        history.append("served from the result cache (an earlier run did the same work)")
    # Budgets (effects helper): a retry's tracker starts from what crashed attempts spent.
    carry = attempt_key(thread_id_of(config), task.id)
    with track_usage(settings.budgets.task_tokens, carry=carry) as usage:
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
    verification = out.get("verification")
    # A result that failed a check is never replayed from the cache, even when it is done.
    if status == "done" and cached is None and (not verification or verification.get("passed")):
        await result_cache.store(settings, key, {k: out.get(k) for k in ("output", "citations", "artifacts")})
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


def specialist_durability(spec: AgentSpec) -> Durability | None:
    """When ``spec``'s sub-graph saves its checkpoints.

    ``"exit"`` for an agent whose tools change nothing outside its answer (the result
    cache's test, ``result_cache.cacheable``): its sub-graph saves a checkpoint only when it
    leaves on an interrupt or an error (``_suppress_interrupt``, langgraph/pregel/_loop.py),
    not after every step. The unit of durability is then the task, whose result the
    dispatch step saves the moment it returns; a crash re-runs an in-flight task from its
    first step, which only repeats model calls. Saves the two to three SQLite commits per
    task that each following step waited for.

    The run's own (None: ``"sync"`` from the CLI, every step on disk before the next) for an
    agent that can write files, refund or update tickets: an answered approval or an action
    taken must be saved before the next step, so that a crash does not ask the same
    question again (tests/test_side_effects.py kills the process between the two).
    """
    return "exit" if result_cache.cacheable(spec) else None


def _usage(out: dict[str, Any], tracker: UsageTracker, price: ModelConfig, cached: bool) -> TaskMetrics:
    """The task's usage: the sub-graph's own count, which is checkpointed and so survives a
    pause for approval (the tracker only sees calls since the last resume)."""
    if cached:
        return TaskMetrics(tokens_in=0, tokens_out=0, model_calls=0, cost_usd=0.0)
    counted = out.get("usage")
    if not counted:
        return tracker.metrics(price)
    carried = tracker.carried  # crashed attempts before this one (effects helper)
    tokens_in = int(counted.get("tokens_in", 0)) + carried["tokens_in"]
    tokens_out = int(counted.get("tokens_out", 0)) + carried["tokens_out"]
    return TaskMetrics(tokens_in=tokens_in, tokens_out=tokens_out,
                       model_calls=int(counted.get("model_calls", 0)) + carried["model_calls"],
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
        durability=specialist_durability(spec),
    )
    # Time-out (effects helper): no high-risk action starts after the deadline, and one that
    # started completes and is recorded before the time-out is reported.
    with guard_actions(wall_s) as guard:
        try:
            return dict(await asyncio.wait_for(run, timeout=wall_s))
        except TimeoutError:
            await guard.settle()
            done = " | ".join(guard.completed)
            return {"error": f"budget: task_wall_s ({wall_s}) exceeded"
                    + (f"; actions that completed: {done}" if done else "")}
        except TokenBudgetExceeded as err:
            return {"error": str(err)}
