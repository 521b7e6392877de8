"""The model profile: how this run's models are driven, decided once per run.

A small local model takes one structured step at a time and answers closed questions well;
a capable model plans, assesses and writes freely. Everything that differs between the two
is a field here, read where it applies — never a model-size check inside a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.trace import mode
from core.settings import ROLES, Settings

__all__ = ["ModelProfile", "profile_for", "structured_steps"]


def structured_steps(settings: Settings, role: str) -> bool:
    """Whether ``role``'s model takes structured steps (the embedded model, or an endpoint
    configured with ``tool_mode = "structured"``). The scripted test model never counts:
    its tests exercise the tool loop and the free planner; flows are tested with
    ``flow = "steps"`` and the judged planner directly."""
    return settings.model_for(role).provider != "test" and mode(settings, role) == "structured"


@dataclass(frozen=True)
class ModelProfile:
    """How a run uses its models (from the supervisor's model and each role's)."""

    planner: Literal["judged", "free"]
    """``judged``: the model answers one yes/no question per specialist, after worked
    examples from the plan library, and code composes the plan; ``free``: the model writes
    the task graph itself (shown the same library examples)."""
    model_assessment: bool
    """Whether the supervisor's model may revise the remaining plan or finish early between
    rounds (a small model's "finish" skipped needed work)."""
    model_synthesis: bool
    """Whether the model writes the opening of a multi-task answer (else the answer is the
    task results, assembled by code)."""
    step_roles: frozenset[str]
    """Roles whose agents run their step flows (the rest run the tool-calling loop)."""


def profile_for(settings: Settings) -> ModelProfile:
    """The profile of a run under ``settings``."""
    small = structured_steps(settings, "supervisor")
    return ModelProfile(
        planner="judged" if small else "free",
        model_assessment=not small,
        model_synthesis=not small,
        step_roles=frozenset(r for r in ROLES if structured_steps(settings, r)),
    )
