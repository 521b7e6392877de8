"""Planning: goal -> validated task graph, and the human review of the plan."""

from __future__ import annotations

import time
from typing import Any, Literal, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents import AgentRegistry, RunContext
from agents.flows import small_model
from core import review
from core.models import StructuredOutputError, achat_model, ainvoke_structured
from core.settings import Settings
from core.usage import track_usage
from graph import prompts, shapes
from graph.planning import PlanCheck, plan_schema, validate_plan
from graph.runtime import emit, run_context, settings_update
from graph.state import OrchestratorState, Plan, PlanVersion, Task

NodeName = Literal["plan", "review_plan", "dispatch", "synthesize"]


def check_tasks(
    raw: Any, settings: Settings, registry: AgentRegistry, done_ids: tuple[str, ...] = ()
) -> PlanCheck:
    """Validate tasks against the run's agents and limits, repairing what is unambiguous."""
    if not isinstance(raw, list):
        return PlanCheck(error="the plan must be a list of tasks")
    return validate_plan(
        raw,
        agents=registry.names(),
        max_tasks=settings.limits.max_tasks,
        choose_agent=lambda task: registry.select(task, "best_match").name,
        done_ids=done_ids,
    )


async def plan(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[NodeName]:
    """Ask the supervisor model for a task graph; retry with the error, then fall back."""
    settings, registry = await run_context(runtime, state)
    attempts = state.get("planner_attempts", 0) + 1
    update: dict[str, Any] = {
        "planner_attempts": attempts,
        "status": "planning",
        **settings_update(runtime, state),
    }
    if attempts == 1 and "started_at" not in state:
        update["started_at"] = time.time()
    emit("planning", attempt=attempts)

    if uses_shapes(settings, registry) and not state.get("feedback"):
        with track_usage() as usage:
            check, how = await plan_by_shape(state["goal"], settings, registry)
        update["usage"] = [usage.metrics(settings.model_for("supervisor"))]
        return Command(
            goto="review_plan", update={**update, **adopt_plan(state, check, f"planned ({how})")}
        )

    messages = [
        SystemMessage(
            prompts.PLANNER.format(
                catalogue=registry.catalogue(), max_tasks=settings.limits.max_tasks
            )
        ),
        HumanMessage(f"Goal: {state['goal']}"),
    ]
    if state.get("conversation"):  # a chat's earlier messages: context, not the goal
        messages.insert(1, HumanMessage(f"Earlier conversation (context):\n{state['conversation']}"))
    if state.get("feedback"):
        messages.append(HumanMessage(prompts.PLANNER_FEEDBACK.format(feedback=state["feedback"])))

    with track_usage() as usage:
        try:
            result = await ainvoke_structured(
                await achat_model(settings, "supervisor"), plan_schema(registry.names()), messages
            )
            planned = cast(Plan, result.value)
            check = check_tasks([t.model_dump() for t in planned.tasks], settings, registry)
        except StructuredOutputError as err:
            check = PlanCheck(error=f"the planner's output was invalid: {err}")
    update["usage"] = [usage.metrics(settings.model_for("supervisor"))]

    if check.error is not None:
        emit("plan_rejected", error=check.error, attempt=attempts)
        if attempts < settings.limits.planner_attempts:
            return Command(goto="plan", update={**update, "feedback": check.error})
        # Out of attempts: one task for the best-matching agent still answers the goal.
        fallback = Task(id="t1", agent="", instruction=state["goal"])
        fallback.agent = registry.select(fallback, "best_match").name
        check = PlanCheck(
            tasks=[fallback], repairs=[f"fell back to a one-task plan after: {check.error}"]
        )
    return Command(goto="review_plan", update={**update, **adopt_plan(state, check, "planned")})


SHAPE_REASON = "planned (shape "
"""How the plan version made from a plan shape begins its reason."""


def planned_by_shape(state: OrchestratorState) -> bool:
    """Whether the current plan was built by code from the goal's shape (not by a model,
    not edited by a human): its agents and stages follow from the goal, so the small
    supervisor model that could not plan it is not asked to revise it or to finish it
    early either (a 0.5B assessor skipped the writer of a report as "not needed")."""
    versions = state.get("plan_versions") or []
    return bool(versions) and str(versions[-1].get("reason", "")).startswith(SHAPE_REASON)


def uses_shapes(settings: Settings, registry: AgentRegistry) -> bool:
    """Plan by shape when the supervisor's model takes structured steps (a small local
    model) and the registry has agents for at least one shape; free planning otherwise."""
    return small_model(settings, "supervisor") and bool(shapes.available(registry.names()))


async def plan_by_shape(
    goal: str, settings: Settings, registry: AgentRegistry
) -> tuple[PlanCheck, str]:
    """The plan from the goal's shape (code), topics from the model for a parallel stage;
    and how it was made (for the plan version's reason)."""
    available = shapes.available(registry.names())
    shape = shapes.classify(goal, available)
    notes: list[str] = []
    if shape is None:  # no shape fits: one task for the best-matching agent
        task = Task(id="t1", agent="", instruction=goal)
        task.agent = registry.select(task, "best_match").name
        return PlanCheck(tasks=[task]), "no plan shape fits: one task"
    topics: list[str] = []
    if any(stage.parallel for stage in shape.stages):
        messages = [SystemMessage(prompts.PLANNER_TOPICS), HumanMessage(f"Goal: {goal}")]
        try:
            result = await ainvoke_structured(
                await achat_model(settings, "supervisor"), shapes.Topics, messages, attempts=2
            )
            topics = [t for t in result.value.topics if t.strip()]
        except StructuredOutputError as err:
            notes.append(f"no topics: {str(err).splitlines()[0]}")
        if len(topics) < 2 and any(s.name == "research_then_write" for s in available):
            shape = shapes.by_name("research_then_write")
            notes.append("sequential research: fewer than two topics")
    check = check_tasks(
        [t.model_dump() for t in shapes.build_tasks(shape, goal, topics)], settings, registry
    )
    return check, ", ".join([f"shape {shape.name}", *notes])


def adopt_plan(state: OrchestratorState, check: PlanCheck, reason: str) -> dict[str, Any]:
    """State update that makes ``check.tasks`` the current plan, as a new plan version."""
    tasks = [t.model_dump() for t in check.tasks]
    version = len(state.get("plan_versions", [])) + 1
    why = reason + ("; " + "; ".join(check.repairs) if check.repairs else "")
    emit("plan", version=version, tasks=tasks, reason=why)
    return {
        "tasks": tasks,
        "plan_versions": [PlanVersion(version=version, reason=why, tasks=tasks)],
        "feedback": "",
        "review_since": time.time(),
    }


async def review_plan(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[NodeName]:
    """Pause for a human to approve, edit or reject the plan (when review is on)."""
    settings, registry = await run_context(runtime, state)
    if not settings.review.plan:
        return Command(goto="dispatch", update={"status": "running"})
    answer = interrupt(review.plan_review_request(
        state["goal"], state.get("tasks", []), len(state.get("plan_versions", [])),
        state.get("feedback") or None,
    ))
    # The node runs again when the answer comes: the time since the plan was put up for
    # review is the human's, not the run's.
    now = time.time()
    waited = {"waited_s": state.get("waited_s", 0.0) + max(0.0, now - state.get("review_since", now))}
    try:
        decision = review.read_plan_answer(answer)
    except review.InvalidAnswer as err:
        return Command(goto="review_plan", update={
            "feedback": f"invalid review answer: {err}", **waited, "review_since": now})
    if decision.action == "approve":
        return Command(goto="dispatch", update={"status": "running", "feedback": "", **waited})
    if decision.action == "reject":
        emit("plan_rejected", error=decision.feedback, by="human")
        return Command(
            goto="plan",
            update={
                "feedback": decision.feedback or "the user rejected the plan",
                "planner_attempts": 0,
                **waited,
            },
        )
    check = check_tasks(decision.tasks, settings, registry)
    if check.error is not None:
        # Ask again, showing the error; the earlier plan is untouched.
        return Command(goto="review_plan", update={
            "feedback": f"edited plan rejected: {check.error}", **waited, "review_since": now})
    return Command(
        goto="dispatch",
        update={**adopt_plan(state, check, "edited by a human"), "status": "running", **waited},
    )
