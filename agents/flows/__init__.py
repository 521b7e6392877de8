"""Specialists as short single-purpose steps with deterministic scaffolding (small models).

Which agents have a step flow, and whether an agent uses it on this run: a role whose model
takes structured steps (the embedded llama.cpp model; ``agents.profile``) gets the steps, a
model with native tool calling keeps the tool loop, unless the agent's ``flow`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from agents.flows.analyst import build_analyst
from agents.flows.coder import build_coder
from agents.flows.common import Resources
from agents.flows.researcher import build_researcher
from agents.flows.reviewer import build_reviewer
from agents.flows.support import build_support
from agents.flows.writer import build_writer
from agents.profile import ModelProfile
from agents.registry import AgentSpec

FlowBuilder = Callable[[str, Resources], CompiledStateGraph[Any, Any, Any, Any]]

FLOWS: dict[str, FlowBuilder] = {
    "analyst": build_analyst,
    "coder": build_coder,
    "researcher": build_researcher,
    "reviewer": build_reviewer,
    "support": build_support,
    "writer": build_writer,
}
"""Agent name -> its step flow."""


def uses_steps(spec: AgentSpec, profile: ModelProfile) -> bool:
    """Whether ``spec`` runs as its step flow under the run's ``profile``."""
    if spec.name not in FLOWS or spec.flow == "loop":
        return False
    return spec.flow == "steps" or spec.model_role in profile.step_roles


__all__ = ["FLOWS", "Resources", "uses_steps"]
