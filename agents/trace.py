"""Small helpers every step of the loop shares: notes to the model, prompt budgets, tool mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from agents.prompts import ToolMode, TraceEntry, prompt_budget
from core.models import tool_mode
from core.settings import Settings


def note(step: int, text: str) -> TraceEntry:
    """A note to the model, shown in its next prompt."""
    return TraceEntry(step=step, kind="note", text=text)


def mode(settings: Settings, role: str) -> ToolMode:
    """How ``role``'s model takes steps: structured (one schema) or native tool calls."""
    return cast(ToolMode, tool_mode(settings.model_for(role)))


def budget(settings: Settings, role: str, tools: Sequence[Any] = ()) -> int:
    """Prompt tokens left for ``role``'s model once its reply and the tool schemas fit."""
    cfg = settings.model_for(role)
    return prompt_budget(cfg.context_window, cfg.max_tokens, tools)
