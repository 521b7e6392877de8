"""Repeated tool calls: small models often repeat themselves; a repeat is answered from the
earlier result instead of being run again."""

from __future__ import annotations

from collections.abc import Sequence

from agents.prompts import TraceEntry
from agents.steps import ToolCallRecord, call_key
from agents.toolset import MUTATING_TOOLS
from core.text import truncate

REPEAT_NOTICE = "You already made this exact call"


def repeat_of(call: ToolCallRecord, trace: Sequence[TraceEntry]) -> TraceEntry | None:
    """The earlier identical call, unless a state-changing tool has run since."""
    key = call_key(call["tool"], call.get("args", {}))
    for entry in reversed(trace):
        if entry.get("kind") != "call":
            continue
        if call_key(entry.get("tool", ""), entry.get("args", {})) == key:
            if str(entry.get("observation", "")).startswith(REPEAT_NOTICE):
                continue  # an earlier repeat: quote the real result, not the notice
            return entry
        if entry.get("ok") and entry.get("tool") in MUTATING_TOOLS:
            return None
    return None


def repeat_observation(trace: Sequence[TraceEntry], call: ToolCallRecord) -> str:
    earlier = repeat_of(call, trace)
    previous = truncate(earlier.get("observation", ""), 400) if earlier else ""
    return (
        f"{REPEAT_NOTICE}; it was not repeated. Its result was:\n"
        f"{previous}\nUse it, try something different, or give the final answer."
    )
