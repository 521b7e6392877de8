"""The state every step flow shares with the supervisor (same keys as the tool loop's)."""

from __future__ import annotations

from typing import Any, Required, TypedDict

from agents.flows.common import TaskUsage


class Verification(TypedDict):
    passed: bool
    feedback: str


class FlowInput(TypedDict, total=False):
    """What the supervisor passes in."""

    task: Required[dict[str, Any]]
    goal: str
    context: str
    feedback: str


class FlowOutput(TypedDict, total=False):
    """What a flow returns (the keys the supervisor's ``run_task`` reads)."""

    output: str
    citations: list[str]
    artifacts: list[str]
    steps: int
    verification: Verification | None
    error: str | None
    usage: TaskUsage


class FlowState(FlowInput, FlowOutput, total=False):
    """Input and output; each flow adds its own working keys."""
