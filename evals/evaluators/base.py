"""Shared shapes of the evaluators: results, the target's output and the references.

Every evaluator is a plain function (or coroutine) taking some of ``inputs``, ``outputs``
and ``reference_outputs`` — the signature langsmith's ``evaluate``/``aevaluate`` and the
pytest plugin accept — and returning one result ``{"key", "score", "comment"}`` or several
as ``{"results": [...]}``. A score of ``None`` means "not applicable to this example" (the
reference has nothing for this evaluator); the runner leaves such scores out of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict


class Score(TypedDict, total=False):
    """One evaluator result, as langsmith reads it."""

    key: str
    score: float | bool | None
    comment: str | None


class Scores(TypedDict):
    """Several results from one evaluator."""

    results: list[Score]


def score(key: str, value: float | bool | None, comment: str | None = None) -> Score:
    """A result; booleans become 1.0/0.0 so every score averages the same way."""
    if isinstance(value, bool):
        value = 1.0 if value else 0.0
    return Score(key=key, score=value, comment=comment)


def not_applicable(key: str, why: str) -> Score:
    """A result that does not count: the example has no reference for this evaluator."""
    return Score(key=key, score=None, comment=f"n/a: {why}")


def section(reference_outputs: Mapping[str, Any] | None, name: str) -> Any:
    """One part of an example's reference outputs (``plan``, ``trajectory``, ``code``…)."""
    return (reference_outputs or {}).get(name)


def plan_tasks(outputs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The plan's tasks from a target output (``plan``), or from a bare list of tasks."""
    if outputs is None:
        return []
    raw = outputs.get("plan", [])
    return [dict(t) for t in raw if isinstance(t, Mapping)] if isinstance(raw, list) else []


def run_failed(outputs: Mapping[str, Any] | None) -> str | None:
    """Why the target produced nothing to grade, or None."""
    if not outputs:
        return "the target produced no output"
    if outputs.get("error") and not outputs.get("plan"):
        return f"the run failed: {outputs['error']}"
    return None
