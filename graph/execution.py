"""Execution: run the plan's tasks, each the moment its own dependencies are done.

``dispatch`` is one graph step that runs every pending task of the plan as a functional-API
``task`` call (``run_task``), all called up front in plan order, each waiting inside for
the scheduler (graph/scheduler.py) to let it start. Why calls rather than one ``Send`` per
task: a step ends only when all of its node executions have, so a dependent sent as its
own node would wait for the slowest task of its round (docs/scheduler.md).

What LangGraph gives the calls:

- each finished call's result is saved on its own (a pending write of the step), so after a
  crash or an interrupt the step runs again and a finished task returns its saved result
  without running; only tasks that were in flight, or had not started, run;
- a call's id is derived from its position among the step's calls; they are made in plan
  order, the same every time the step runs, so each saved result finds its task again
  (results are not matched by the order in which tasks happened to finish);
- an ``interrupt`` inside a task (a tool approval) pauses only that task: the others run
  on; the step ends with every pending interrupt, each resumable by its own id.

The step ends when nothing more can start: every task finished, or waits for a failed
dependency, an interrupted one, or an assessment; or a budget is spent. It also ends
whenever no task is running (``CHECKPOINT_WHEN_IDLE``), so a chain still leaves a
checkpoint between its tasks for forks. Failures are escalated by ``assess`` after the step.
What one task's run does (agent, cache, budgets, record) is in graph/task_run.py.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langgraph.config import get_config
from langgraph.errors import GraphInterrupt
from langgraph.func import task as functional_task
from langgraph.runtime import Runtime, get_runtime
from langgraph.types import Command

from agents import AgentRegistry, RunContext
from agents.run_context import thread_id_of
from core.redact import without_secrets
from core.settings import Settings
from core.usage import attempt_key, cost_usd, take_carried
from graph.assessment import Assessment, apply_verdict, judge, wants_assessment
from graph.context import dependency_context
from graph.controls import stop_reason
from graph.dag import blocked_tasks, partial_ids, ready_tasks, status_of
from graph.retries import TRANSIENT_RETRY
from graph.runtime import context_for, emit, run_context, settings_update
from graph.scheduler import NotStarted, Scheduler
from graph.state import OrchestratorState, Task, TaskMetrics, TaskRecord, merge_results
from graph.task_run import WorkerPayload, run_task

CONTEXT_SHARE = 0.4
"""Share of a worker model's context window given to its dependencies' results."""
CHECKPOINT_WHEN_IDLE = True
"""End the step whenever no task is running, so each such moment is a checkpoint (a fork
point between the tasks of a chain). Costs one step where nothing was running anyway."""

Next = Literal["dispatch", "assess", "synthesize"]


_step: ContextVar[DispatchStep] = ContextVar("dispatch_step")
"""The step a ``run_task`` call belongs to (calls are made from inside it)."""


@functional_task(name="run_task", retry_policy=TRANSIENT_RETRY)  # type: ignore[arg-type]  # overloads
async def run_task_call(task_id: str) -> TaskRecord:
    """One task of the plan: wait for the scheduler, then run it on its specialist."""
    step = _step.get()
    admission = await step.scheduler.admit(task_id)
    try:
        out = await run_task(cast(WorkerPayload, admission.payload), get_config(), get_runtime())
    finally:
        step.scheduler.leave(task_id)
    record: TaskRecord = out["results"][task_id]
    return {**record, "attempts": step.attempts(task_id)}


@dataclass
class DispatchStep:
    """The state of one ``dispatch`` step while its tasks run."""

    state: OrchestratorState
    ctx: RunContext
    settings: Settings
    registry: AgentRegistry
    tasks: list[Task]
    results: dict[str, TaskRecord]
    scheduler: Scheduler = field(init=False)
    records: dict[str, TaskRecord] = field(default_factory=dict)
    interrupts: list[GraphInterrupt] = field(default_factory=list)
    usage: list[TaskMetrics] = field(default_factory=list)
    stop: str | None = None
    verdict: Assessment | None = None
    _assessing: asyncio.Task[tuple[Assessment | None, TaskMetrics]] | None = None
    _assessed_ids: frozenset[str] = frozenset()
    _checked: tuple[int, int, int] = (-1, -1, -1)

    def __post_init__(self) -> None:
        runnable = [t for t in self.tasks if status_of(self.results, t.id) == "pending"]
        status = {k: r["status"] for k, r in self.results.items() if r.get("status") != "pending"}
        self.scheduler = Scheduler(
            runnable, status, max_concurrency=self.settings.limits.max_concurrency,
            base_round=self.state.get("rounds", 0),
            hold=wants_assessment(self.state, self.settings, self.ctx.profile, True),
            partial=partial_ids(self.results),
        )

    def attempts(self, task_id: str) -> int:
        return int(self.state.get("results", {}).get(task_id, {}).get("attempts", 0)) + 1

    # -- deciding --------------------------------------------------------------------------

    def may_start(self, task: Task, round_: int) -> WorkerPayload | None:
        """The task's payload, or None when no task may start any more."""
        if self.stop or self.verdict:
            return None
        checked = (len(self.records), len(self.usage), round_)
        if checked != self._checked:  # budgets change only when something finishes
            self._checked = checked
            view = cast(OrchestratorState, {**self.state, "results": self.results, "rounds": round_ - 1,
                                            "usage": [*self.state.get("usage", []), *self.usage]})
            self.stop = stop_reason(view, self.settings)
            if self.stop:
                emit("stopped", reason=self.stop)
                return None
        previous = self.results.get(task.id, {})
        exclude = list(previous.get("failed_agents", []))
        worker = self.registry.select(task, self.settings.worker_selection, exclude=frozenset(exclude))
        model = str(previous.get("model") or "")
        window = (self.settings.all_models()[model] if model else self.settings.model_for(worker.model_role)).context_window
        budget = int(window * CONTEXT_SHARE)
        emit("round", round=round_, tasks=[task.id])
        return WorkerPayload(
            task=task.model_dump(), goal=self.state["goal"],
            context=dependency_context(task, self.results, budget),
            feedback=str(previous.get("feedback", "")), exclude=exclude, agent=worker.name,
            run_settings=without_secrets(self.ctx.overrides), model=model,
        )

    def _idle(self, calls: dict[str, asyncio.Future[TaskRecord]]) -> bool:
        """No task running or between states: every open call waits at its gate."""
        open_calls = {k for k, f in calls.items() if not f.done()}
        return open_calls <= self.scheduler.waiting and self._assessing is None

    def _assess_in_background(self) -> None:
        """Let the supervisor judge the results so far while the running tasks go on."""
        self._assessed_ids = frozenset(self.scheduler.unassessed)
        pending = [t for t in self.scheduler.tasks if t.id not in self.scheduler.rounds]
        view = cast(OrchestratorState, {**self.state, "results": self.results})
        self._assessing = asyncio.ensure_future(judge(view, pending, self.settings, self.registry))
        self._assessing.add_done_callback(lambda _: self.scheduler.changed.set())

    def _take_assessment(self) -> None:
        assert self._assessing is not None
        try:
            verdict, usage = self._assessing.result()
        except Exception as err:
            emit("assessment_failed", error=f"{type(err).__name__}: {err}")
            verdict, usage = None, None
        self._assessing = None
        if usage:
            self.usage.append(usage)
        if verdict is not None and verdict.decision != "continue":
            self.verdict = verdict  # no task starts any more; applied when the step ends
        self.scheduler.assessed(self._assessed_ids)

    # -- running ---------------------------------------------------------------------------

    def _collect(self, task_id: str, call: asyncio.Future[TaskRecord]) -> None:
        try:
            record = call.result()
        except NotStarted:
            return
        except GraphInterrupt as paused:
            self.interrupts.append(paused)
            return
        except Exception as err:
            task = next(t for t in self.tasks if t.id == task_id)
            record = crashed(self.results.get(task_id, {}), task, err, self._spent(task))
        self.records[task_id] = record
        self.scheduler.finished(task_id, record.get("status", "failed"))
        self.results = merge_results(self.results, {task_id: record})

    def _spent(self, task: Task) -> TaskMetrics | None:
        """What a crashed task's attempts spent (carried across its retries and pauses), priced."""
        spent = take_carried(attempt_key(thread_id_of(get_config()), task.id))
        if spent is not None:
            price = (self.settings.model_for(self.registry.get(task.agent).model_role)
                     if task.agent in self.registry else None)
            spent["cost_usd"] = cost_usd(spent["tokens_in"], spent["tokens_out"], price)
        return spent

    def _advance(self, calls: dict[str, asyncio.Future[TaskRecord]], ran_any: bool) -> None:
        """Start what can start; assess what needs it; close the step when nothing can."""
        idle = self._idle(calls)
        if CHECKPOINT_WHEN_IDLE and ran_any and idle:
            self.scheduler.close()
            return
        opened = self.scheduler.open(self.may_start)
        idle = idle and not opened
        if idle and self._assessing is None:
            self.scheduler.close()  # nothing can start; results to judge go to the assess step
        elif self.scheduler.held() and self._assessing is None and not self.verdict:
            self._assess_in_background()

    async def run(self) -> None:
        """Call every runnable task, let each start when it can, until none can."""
        _step.set(self)
        calls = {t.id: cast(asyncio.Future[TaskRecord], run_task_call(t.id))  # type: ignore[arg-type]
                 for t in self.scheduler.tasks}
        for call in calls.values():
            call.add_done_callback(lambda _: self.scheduler.changed.set())
        try:
            await self._drive(calls)
        finally:  # even if this step fails, no call may wait at its gate for ever
            if not self.scheduler.closed:
                self.scheduler.close()

    async def _drive(self, calls: dict[str, asyncio.Future[TaskRecord]]) -> None:
        unseen = dict(calls)
        settled = False
        ran_any = False
        while unseen:
            for task_id, call in list(unseen.items()):
                if call.done():
                    del unseen[task_id]
                    self._collect(task_id, call)
                    ran_any = ran_any or (settled and task_id in self.records)
            if self._assessing is not None and self._assessing.done():
                self._take_assessment()
            # Nothing starts before every call has either returned a result saved by an
            # earlier run of this step (a resume, a restart) or is waiting at its gate: a
            # replayed result must not look like a task that just finished.
            settled = settled or set(unseen) <= self.scheduler.waiting
            if settled and not self.scheduler.closed:
                self._advance(calls, ran_any)
            if unseen:
                self.scheduler.changed.clear()
                await self.scheduler.changed.wait()
        if self._assessing is not None:
            self._take_assessment()


def crashed(previous: TaskRecord, task: Task, error: BaseException,
            spent: TaskMetrics | None = None) -> TaskRecord:
    """A task whose run raised after its retries: a failure to escalate, not a crash of the run.
    Its attempts' usage (``spent``) stays in the record, so budgets count it."""
    message = f"{type(error).__name__}: {error}"
    emit("task_finished", task_id=task.id, agent=task.agent, status="failed", error=message)
    record = TaskRecord(task=task.model_dump(), status="failed", error=message,
                        attempts=previous.get("attempts", 0) + 1, history=[f"crashed: {message}"])
    if spent is not None:
        record["metrics"] = spent
    return record


async def dispatch(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[Next]:
    """Run the ready part of the plan (see the module docstring), or move on to synthesis."""
    settings, registry = await run_context(runtime, state)
    tasks = [Task.model_validate(t) for t in state.get("tasks", [])]
    results = dict(state.get("results", {}))
    skipped = blocked_tasks(tasks, results)
    results.update(skipped)
    ready = ready_tasks(tasks, results)
    reason = stop_reason(state, settings) if ready else None
    if reason or not ready:
        if reason:
            emit("stopped", reason=reason)
        return Command(goto="synthesize", update={"results": skipped, "stop_reason": reason or ""})

    if (bound := get_config().get("max_concurrency")) and bound <= len(tasks):
        # LangChain's own bound gates every call, also those waiting for their dependencies.
        raise ValueError(f"the run config's max_concurrency ({bound}) would starve tasks waiting "
                         "for their dependencies; bound tasks with limits.max_concurrency instead")
    step = DispatchStep(state, context_for(runtime, state), settings, registry, tasks, results)
    await step.run()
    if step.interrupts:  # the finished tasks' results are saved; the step runs again on resume
        raise GraphInterrupt(tuple(i for paused in step.interrupts for i in paused.args[0]))
    rounds = max(step.scheduler.rounds.values(), default=state.get("rounds", 0))
    records = {t.id: step.records[t.id] for t in tasks if t.id in step.records}  # plan order
    update: dict[str, Any] = {"results": {**skipped, **records}, "rounds": rounds,
                              **settings_update(runtime, state)}  # a fork or resume with new settings
    if step.usage:
        update["usage"] = step.usage
    if step.stop:
        return Command(goto="synthesize", update={**update, "stop_reason": step.stop})
    results = step.results
    if step.verdict is not None:
        return cast(Command[Next], apply_verdict(state | {"results": results}, results, tasks, step.verdict,
                                                  settings, registry, update))
    failed = any(r.get("status") == "failed" and not r.get("settled") for r in results.values())
    pending = any(status_of(results, t.id) == "pending" for t in tasks)
    if failed or (step.scheduler.unassessed and pending):  # escalate, or judge before going on
        return Command(goto="assess", update=update)
    if ready_tasks(tasks, results):
        return Command(goto="dispatch", update=update)
    return Command(goto="synthesize", update={**update, "stop_reason": "",
                                              "results": {**update["results"], **blocked_tasks(tasks, results)}})
