"""Trajectory evaluators: which agents ran, and in what order.

The run's trajectory is the list of tasks that actually ran (done or failed), each with
its agent and start/end time (``core.usage.TaskMetrics``). Agent coverage is scored with
agentevals' trajectory match: every agent run becomes a tool call named after the agent,
grouped into one assistant message per wave of tasks that ran side by side, and compared
with the reference agents in ``superset`` mode by default — every expected agent ran (as
often as listed), extra agents are allowed, and order inside and across waves is ignored,
so parallel execution never costs points. Order is scored separately on the run's timing:
for a required ordering ``(a, b)``, no ``b`` task may start before an ``a`` task ended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agentevals.trajectory.match import create_trajectory_match_evaluator
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from evals.evaluators.base import Score, Scores, not_applicable, score, section

MatchMode = Literal["superset", "unordered", "subset", "strict"]
RAN = ("done", "failed")
_EPS = 1e-6


def ran_steps(outputs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Trajectory steps that ran (done or failed), ordered by start time."""
    steps = [s for s in (outputs or {}).get("trajectory") or [] if isinstance(s, Mapping)]
    ran = [dict(s) for s in steps if s.get("status") in RAN and s.get("agent")]
    return sorted(ran, key=lambda s: (float(s.get("started_at") or 0.0), str(s.get("task_id"))))


def waves(steps: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Group steps (sorted by start) into waves: a step joins the current wave unless it
    started after a step of that wave had ended."""
    groups: list[list[Mapping[str, Any]]] = []
    first_end = float("inf")
    for step in steps:
        start = float(step.get("started_at") or 0.0)
        if groups and start < first_end - _EPS:
            groups[-1].append(step)
            first_end = min(first_end, float(step.get("ended_at") or start))
        else:
            groups.append([step])
            first_end = float(step.get("ended_at") or start)
    return groups


def run_as_messages(goal: str, steps: Sequence[Mapping[str, Any]]) -> list[BaseMessage]:
    """The run as a chat trajectory: one assistant message per wave, one call per agent run."""
    messages: list[BaseMessage] = [HumanMessage(goal or "(goal)")]
    for wave in waves(steps):
        calls = [
            {
                "name": str(s["agent"]),
                "args": {},
                "id": str(s.get("task_id") or i),
                "type": "tool_call",
            }
            for i, s in enumerate(wave)
        ]
        messages.append(AIMessage(content="", tool_calls=calls))
    return messages


def reference_as_messages(goal: str, agents: Sequence[str]) -> list[BaseMessage]:
    """The expected agents as a chat trajectory (one message: their order is not scored)."""
    calls = [
        {"name": a, "args": {}, "id": f"ref{i}", "type": "tool_call"} for i, a in enumerate(agents)
    ]
    return [HumanMessage(goal or "(goal)"), AIMessage(content="", tool_calls=calls)]


def ordering_problems(
    steps: Sequence[Mapping[str, Any]], orderings: Sequence[Sequence[str]]
) -> list[str]:
    """Required orderings the run broke: ``(a, b)`` fails when a ``b`` task started before
    any ``a`` task had ended, or when either agent never ran (with recorded times)."""
    timed = [s for s in steps if s.get("started_at") is not None and s.get("ended_at") is not None]
    problems = []
    for first, then in orderings:
        ends = [float(s["ended_at"]) for s in timed if s["agent"] == first]
        starts = [float(s["started_at"]) for s in timed if s["agent"] == then]
        if not ends or not starts:
            problems.append(f"{first} -> {then}: {first if not ends else then} never ran")
        elif min(starts) < min(ends) - _EPS:
            problems.append(f"{first} -> {then}: {then} started before any {first} task ended")
    return problems


def make_trajectory(mode: MatchMode = "superset") -> Any:
    """Evaluator ``trajectory``: ``trajectory_agents`` (0/1, agentevals match in ``mode``)
    and ``trajectory_order`` (share of the reference orderings the run kept)."""
    match = create_trajectory_match_evaluator(
        trajectory_match_mode=mode, tool_args_match_mode="ignore"
    )

    def trajectory(
        inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
    ) -> Scores | Score:
        ref = section(reference_outputs, "trajectory")
        if not ref:
            return not_applicable("trajectory_agents", "the example states no trajectory")
        goal = str((inputs or {}).get("goal", ""))
        steps = ran_steps(outputs)
        expected = [str(a) for a in ref.get("agents") or []]
        ran = [str(s["agent"]) for s in steps]
        result = match(
            outputs=run_as_messages(goal, steps),
            reference_outputs=reference_as_messages(goal, expected),
        )
        detail = f"ran {ran or 'nothing'}; expected ({mode}) {expected}"
        results = [score("trajectory_agents", bool(result["score"]), detail)]
        orderings = ref.get("orderings") or []
        if orderings:
            problems = ordering_problems(steps, orderings)
            results.append(
                score(
                    "trajectory_order",
                    round(1 - len(problems) / len(orderings), 4),
                    "; ".join(problems) or "kept",
                )
            )
        return Scores(results=results)

    return trajectory
