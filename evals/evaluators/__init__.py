"""Evaluators for the orchestrator's runs, split by what they look at.

* :mod:`evals.evaluators.plan` — plan validity, dependency plausibility, plan properties;
* :mod:`evals.evaluators.trajectory` — which agents ran and in what order (agentevals);
* :mod:`evals.evaluators.judge` — correctness and groundedness (openevals LLM-as-judge),
  source recall;
* :mod:`evals.evaluators.answer` — key facts the answer must state;
* :mod:`evals.evaluators.actions` — refunds and ticket changes in the customer database;
* :mod:`evals.evaluators.code` — the produced code against hidden tests, in the sandbox, and
  a project's files (its modules, design and README);
* :mod:`evals.evaluators.metrics` — cost, tokens, latency and completion.

:func:`build_evaluators` turns the names a dataset lists into the callables langsmith's
``evaluate``/``aevaluate`` run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.evaluators.actions import actions
from evals.evaluators.answer import key_facts
from evals.evaluators.base import Score, Scores, not_applicable, score
from evals.evaluators.code import code_tests, project_files
from evals.evaluators.judge import JudgeSource, make_correctness, make_groundedness, source_recall
from evals.evaluators.metrics import METRIC_KEYS, run_cost
from evals.evaluators.plan import make_plan_validity, plan_properties, planner_clean
from evals.evaluators.trajectory import make_trajectory

JUDGE_EVALUATORS = frozenset({"correctness", "groundedness"})
"""Evaluators that need a judge model."""

EVALUATOR_NAMES = (
    "plan_validity",
    "plan_properties",
    "planner_first_try",
    "trajectory",
    "correctness",
    "groundedness",
    "source_recall",
    "key_facts",
    "actions",
    "code_tests",
    "project_files",
    "run_metrics",
)
"""Names a dataset may list, in the order their scores are reported."""

SCORE_KEYS: dict[str, tuple[str, ...]] = {
    "plan_validity": ("plan_valid", "plan_dependencies"),
    "plan_properties": ("plan_properties",),
    "planner_first_try": ("planner_first_try",),
    "trajectory": ("trajectory_agents", "trajectory_order"),
    "correctness": ("correctness",),
    "groundedness": ("groundedness",),
    "source_recall": ("source_recall",),
    "key_facts": ("key_facts", "no_forbidden"),
    "actions": ("actions",),
    "code_tests": ("code_tests",),
    "project_files": ("project_files",),
    "run_metrics": (*METRIC_KEYS, "completed"),
}
"""Score keys each evaluator can report (what thresholds may name)."""


class UnknownEvaluatorError(ValueError):
    """A dataset names an evaluator that does not exist."""


def build_evaluators(
    names: Sequence[str],
    *,
    judge: JudgeSource | None = None,
    kb_dir: Path | None = None,
    agents: Sequence[str] | None = None,
    max_tasks: int | None = None,
) -> list[Callable[..., Any]]:
    """The evaluator callables for ``names``; ``judge`` (a model, or a factory called per
    verdict) is required for the LLM judges."""
    unknown = [n for n in names if n not in EVALUATOR_NAMES]
    if unknown:
        raise UnknownEvaluatorError(
            f"unknown evaluator(s) {unknown}; known: {list(EVALUATOR_NAMES)}"
        )
    if judge is None and JUDGE_EVALUATORS & set(names):
        raise ValueError(f"evaluators {sorted(JUDGE_EVALUATORS & set(names))} need a judge model")
    made: dict[str, Callable[[], Callable[..., Any]]] = {
        "plan_validity": lambda: make_plan_validity(agents, max_tasks),
        "plan_properties": lambda: plan_properties,
        "planner_first_try": lambda: planner_clean,
        "trajectory": lambda: make_trajectory(),
        "correctness": lambda: make_correctness(judge),  # type: ignore[arg-type]
        "groundedness": lambda: make_groundedness(judge, kb_dir=kb_dir),  # type: ignore[arg-type]
        "source_recall": lambda: source_recall,
        "key_facts": lambda: key_facts,
        "actions": lambda: actions,
        "code_tests": lambda: code_tests,
        "project_files": lambda: project_files,
        "run_metrics": lambda: run_cost,
    }
    return [made[name]() for name in names]


__all__ = [
    "EVALUATOR_NAMES",
    "JUDGE_EVALUATORS",
    "METRIC_KEYS",
    "SCORE_KEYS",
    "JudgeSource",
    "Score",
    "Scores",
    "UnknownEvaluatorError",
    "actions",
    "build_evaluators",
    "code_tests",
    "key_facts",
    "make_correctness",
    "make_groundedness",
    "make_plan_validity",
    "make_trajectory",
    "not_applicable",
    "plan_properties",
    "planner_clean",
    "run_cost",
    "score",
    "source_recall",
]
