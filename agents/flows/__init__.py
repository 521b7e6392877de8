"""Specialists as short single-purpose steps with deterministic scaffolding (small models).

Which agents have a step flow, and whether an agent uses it on this run's model: a model
that takes structured steps (the embedded llama.cpp model) gets the steps, a model with
native tool calling keeps the tool loop, unless the agent's ``flow`` says otherwise.
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
from agents.registry import AgentSpec
from agents.trace import mode
from core.settings import Settings

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


def small_model(settings: Settings, role: str) -> bool:
    """Whether ``role``'s model takes structured steps (the embedded model, or an endpoint
    configured with ``tool_mode = "structured"``). The scripted test model never counts:
    its tests exercise the tool loop and the free planner; flows are tested with
    ``flow = "steps"`` and plan shapes directly."""
    return settings.model_for(role).provider != "test" and mode(settings, role) == "structured"


def uses_steps(spec: AgentSpec, settings: Settings) -> bool:
    """Whether ``spec`` runs as its step flow under ``settings``."""
    if spec.name not in FLOWS or spec.flow == "loop":
        return False
    return spec.flow == "steps" or small_model(settings, spec.model_role)


__all__ = ["FLOWS", "Resources", "small_model", "uses_steps"]
