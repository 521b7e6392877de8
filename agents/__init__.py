"""Specialist agents: the registry the planner chooses from, and each agent's sub-graph."""

from agents.registry import (
    AgentRegistry,
    AgentSpec,
    NoAgentAvailableError,
    SelectionStrategy,
    UnknownAgentError,
)
from agents.specialist import (
    ModelFactory,
    SpecialistInput,
    SpecialistOutput,
    SpecialistState,
    TaskUsage,
    Verification,
    build_specialist,
    parse_approval,
)
from agents.steps import FinalAnswer, Verdict, step_schema

__all__ = [
    "AgentRegistry",
    "AgentSpec",
    "FinalAnswer",
    "ModelFactory",
    "NoAgentAvailableError",
    "SelectionStrategy",
    "SpecialistInput",
    "SpecialistOutput",
    "SpecialistState",
    "TaskUsage",
    "UnknownAgentError",
    "Verdict",
    "Verification",
    "build_specialist",
    "parse_approval",
    "step_schema",
]
