"""A specialist's state: what the supervisor passes in, what comes back, the loop's working set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Required, TypedDict, cast

from langchain_core.language_models import BaseChatModel

from agents.prompts import TraceEntry
from agents.steps import ToolCallRecord
from core.settings import Settings
from core.usage import Usage, UsageDict
from core.usage import add_usage as _add

ModelFactory = Callable[[Settings, str], BaseChatModel]
"""``(settings, role) -> chat model``; the default is ``core.models.chat_model``."""


class Verification(TypedDict):
    """The reviewer's verdict on the final answer."""

    passed: bool
    feedback: str


class SpecialistInput(TypedDict, total=False):
    """What the supervisor passes in."""

    task: Required[dict[str, Any]]
    """The Task as a dict (id, agent, instruction, acceptance_criteria, depends_on)."""
    goal: str
    context: str
    """Dependency results, already selected and rendered by the supervisor."""
    feedback: str
    """Earlier reviewer or human feedback for this task (may be empty)."""




def add_usage(
    state: Mapping[str, object], tokens_in: int, tokens_out: int, calls: int = 1
) -> UsageDict:
    """The state's usage plus ``calls`` more model calls' tokens."""
    return _add(cast(Mapping[str, int] | None, state.get("usage")), tokens_in, tokens_out, calls)


def structured_usage(state: SpecialistState, usage: Usage) -> UsageDict:
    """The state's usage plus a structured call's."""
    return add_usage(state, usage.input_tokens, usage.output_tokens, usage.calls)


class SpecialistOutput(TypedDict, total=False):
    """What the sub-graph returns."""

    output: str
    citations: list[str]
    artifacts: list[str]
    """Workspace files the agent wrote."""
    steps: int
    """Model calls made (tool steps, final answers, the forced answer)."""
    verification: Verification | None
    """None when not verified (verification off, or no acceptance criteria)."""
    error: str | None
    usage: UsageDict
    """Model usage of this invocation, worker and reviewer, including calls made before an
    interrupt (a resumed parent node only sees the calls made after it resumed)."""


class SpecialistState(SpecialistInput, SpecialistOutput, total=False):
    """Input, output and the loop's working state (all JSON-compatible)."""

    trace: list[TraceEntry]
    """Tool calls with their results and notes to the model, rendered into each prompt."""
    pending: list[ToolCallRecord]
    """Calls chosen by the last ``act`` step, not yet run."""
    round_steps: int
    """Steps since the last (re)start; the step limit applies per attempt."""
    failed_verifications: int
    flow: str
    """``steps`` (the agent's step flow) or ``loop`` (the tool loop), chosen at the start."""
