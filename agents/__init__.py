"""Specialist agents: the registry the planner chooses from, and each agent's sub-graph."""

from agents.approval import parse_approval
from agents.registry import (
    AgentRegistry,
    AgentSpec,
    NoAgentAvailableError,
    SelectionStrategy,
    UnknownAgentError,
)
from agents.run_context import RunContext, base_settings, context_of, thread_id_of
from agents.specialist import build_specialist
from agents.state import (
    ModelFactory,
    SpecialistInput,
    SpecialistOutput,
    SpecialistState,
    Verification,
)
from agents.steps import FinalAnswer, Verdict, step_schema

__all__ = [
    "AgentRegistry",
    "AgentSpec",
    "FinalAnswer",
    "ModelFactory",
    "NoAgentAvailableError",
    "RunContext",
    "SelectionStrategy",
    "SpecialistInput",
    "SpecialistOutput",
    "SpecialistState",
    "UnknownAgentError",
    "Verdict",
    "Verification",
    "base_settings",
    "build_specialist",
    "context_of",
    "parse_approval",
    "step_schema",
    "thread_id_of",
]
