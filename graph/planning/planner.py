"""The planner's nodes: goal -> validated task graph, and the human review of the plan.

Two ways to plan, chosen by the run's model profile (``agents.profile``):

- ``judged`` (small models): the model answers one yes/no question per specialist, after
  worked examples from the plan library (``judged``), and code composes the tasks from the
  answers (``compose``);
- ``free`` (capable models, and every re-plan after feedback): the model writes the task
  graph, shown the library's nearest examples; the plan is validated and repaired
  (``validation``), retried with the error, and falls back to one task.

A plan a human approved (or wrote) for a run that completed joins the library
(:func:`learn_from`), so the next similar goal is planned like it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents import AgentRegistry, RunContext
from core import review
from core.models import StructuredOutputError, achat_model, ainvoke_structured
from core.settings import Settings
from core.types import PlannedBy
from core.usage import track_usage
from graph.planning import prompts
from graph.planning.compose import compose
from graph.planning.design import Project, briefs, judge_project
from graph.planning.judged import judge_needs
from graph.planning.library import PlanExample, PlanLibrary, library_for
from graph.planning.validation import PlanCheck, plan_schema, validate_plan
from graph.runtime import context_for, emit, run_context, settings_update
from graph.state import OrchestratorState, Plan, PlanVersion, Task

LIBRARY_EXAMPLES = 4
"""Library examples shown to a model that writes the plan itself."""

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

    library = await asyncio.to_thread(library_for, settings)
    if context_for(runtime, state).profile.planner == "judged" and not state.get("feedback"):
        with track_usage() as usage:
            check, how = await plan_by_judgment(state["goal"], settings, registry, library)
        update["usage"] = [usage.metrics(settings.model_for("supervisor"))]
        return Command(
            goto="review_plan", update={**update, **adopt_plan(state, check, how, "judged")}
        )

    messages = [
        SystemMessage(
            prompts.PLANNER.format(
                catalogue=registry.catalogue(), max_tasks=settings.limits.max_tasks
            )
        ),
        HumanMessage(f"Goal: {state['goal']}"),
    ]
    examples = library.nearest(state["goal"], LIBRARY_EXAMPLES, registry.names())
    if examples:
        messages.insert(1, HumanMessage(prompts.PLANNER_EXAMPLES.format(examples=_render(examples))))
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
        return Command(
            goto="review_plan", update={**update, **adopt_plan(state, check, "planned", "fallback")}
        )
    return Command(
        goto="review_plan", update={**update, **adopt_plan(state, check, "planned", "model")}
    )


def _render(examples: Sequence[PlanExample]) -> str:
    lines = []
    for e in examples:
        if e.tasks:
            steps = ", ".join(
                f"{t.get('id')}={t.get('agent')}"
                + (f"<-{'+'.join(map(str, t.get('depends_on') or []))}" if t.get("depends_on") else "")
                for t in e.tasks
            )
        else:
            steps = ", ".join(f"{t.id}={t.agent}" + (f"<-{'+'.join(t.depends_on)}" if t.depends_on else "")
                              for t in compose(e.goal, e.needs, e.topics))
        lines.append(f"- {e.goal.splitlines()[0][:200]} => {steps}")
    return "\n".join(lines)


async def plan_by_judgment(
    goal: str, settings: Settings, registry: AgentRegistry, library: PlanLibrary
) -> tuple[PlanCheck, str]:
    """The plan from the model's judgment of which specialists ``goal`` needs, composed by
    code; and how it was made (for the plan version's reason)."""
    model = await achat_model(settings, "supervisor")
    needs = await judge_needs(model, goal, registry, library)
    project = Project(None)
    if "coder" in needs.agents and "support" not in needs.agents:
        project = await judge_project(model, goal, library, registry.names())
    modules = briefs(project.design) if project.design is not None else []
    tasks = compose(goal, needs.agents, needs.topics, modules)
    check = check_tasks([t.model_dump() for t in tasks], settings, registry)
    judged = "planned by judgment (" + ", ".join(t.agent for t in check.tasks) + ")"
    return check, "; ".join([judged, *needs.notes, *project.notes])


async def learn_from(state: OrchestratorState, settings: Settings) -> None:
    """Add the run's plan to the plan library when the run completed and a human approved
    or wrote its final plan (never a plan nobody looked at: auto-approved runs teach nothing)."""
    if not state.get("plan_approved") or not state.get("tasks"):
        return
    library = await asyncio.to_thread(library_for, settings)
    example = await asyncio.to_thread(library.record, state["goal"], state["tasks"])
    if example is not None:
        emit("plan_learned", agents=sorted(example.needs))


def adopt_plan(
    state: OrchestratorState, check: PlanCheck, reason: str, planned_by: PlannedBy
) -> dict[str, Any]:
    """State update that makes ``check.tasks`` the current plan, as a new plan version."""
    tasks = [t.model_dump() for t in check.tasks]
    version = len(state.get("plan_versions", [])) + 1
    why = reason + ("; " + "; ".join(check.repairs) if check.repairs else "")
    emit("plan", version=version, tasks=tasks, reason=why)
    return {
        "tasks": tasks,
        "plan_versions": [
            PlanVersion(version=version, reason=why, tasks=tasks, planned_by=planned_by)
        ],
        "plan_approved": planned_by == "human",
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
        return Command(goto="dispatch", update={
            "status": "running", "feedback": "", "plan_approved": True, **waited})
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
        update={**adopt_plan(state, check, "edited by a human", "human"), "status": "running", **waited},
    )
