"""What a worker's model returns each step, and how a reply becomes tool calls or an answer.

Two tool modes share one representation (:class:`Decision`):

- ``structured``: one forced call of an ``AgentStep`` schema built per agent, whose
  ``action`` enum only admits that agent's tools and ``final_answer`` (what the embedded
  llama.cpp server supports: it honours a forced, named tool_choice and turns the schema into
  a grammar);
- ``native``: the tools plus ``FinalAnswer`` bound with ``tool_choice="any"``; the reply's
  tool calls are executed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field, create_model

FINAL_ACTION = "final_answer"
STEP_SCHEMA_NAME = "AgentStep"

CallStatus = Literal["run", "needs_approval", "approved", "rejected", "invalid", "duplicate"]


class ToolCallRecord(TypedDict, total=False):
    """One tool call the model asked for, as kept in the sub-graph's state."""

    id: str
    tool: str
    args: dict[str, Any]
    thought: str
    status: CallStatus
    feedback: str
    """Approval feedback (rejections) or why the call is invalid."""


class FinalAnswer(BaseModel):
    """Give the final answer to the task, with the sources it is based on."""

    answer: str = Field(description="The complete final answer to the task.")
    citations: list[str] = Field(
        default_factory=list,
        description="Sources the answer uses (document names, file paths, record ids).",
    )


class Verdict(BaseModel):
    """Whether a result meets the task's acceptance criteria."""

    passed: bool = Field(description="True only if the result meets every criterion.")
    feedback: str = Field(
        default="", description="If it fails: what is wrong or missing and how to fix it."
    )


def step_schema(tool_names: Sequence[str]) -> type[BaseModel]:
    """The ``AgentStep`` schema for an agent with ``tool_names`` (structured tool mode).

    One class per tool set, built once: generating a schema is a large share of the
    per-step CPU cost, and a stable class lets pydantic reuse its cached validators.
    """
    return _step_schema(tuple(tool_names))


@lru_cache(maxsize=256)
def _step_schema(tool_names: tuple[str, ...]) -> type[BaseModel]:
    """See ``step_schema``.

    Field order matters for small models: think, choose, fill arguments, then answer.
    """
    actions: Any = Literal[(*tool_names, FINAL_ACTION)]
    return create_model(
        STEP_SCHEMA_NAME,
        __doc__="One step: call one tool, or give the final answer.",
        thought=(str, Field(description="One short sentence: what to do next and why.")),
        action=(actions, Field(description=f"A tool name, or {FINAL_ACTION!r} when done.")),
        action_input=(
            dict[str, Any],
            Field(default_factory=dict, description="The tool's arguments; {} for final_answer."),
        ),
        answer=(
            str,
            Field(default="", description="For final_answer: the complete answer to the task."),
        ),
        citations=(
            list[str],
            Field(default_factory=list, description="For final_answer: the sources used."),
        ),
    )


@dataclass
class Decision:
    """A model reply, normalised: tool calls to run, or a final answer, or neither."""

    calls: list[ToolCallRecord] = field(default_factory=list)
    answer: str | None = None
    citations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Problems with the reply, shown to the model next step (never a crash)."""
    thought: str = ""


def from_structured(step: BaseModel, step_no: int) -> Decision:
    """Decide from a validated ``AgentStep``."""
    data = step.model_dump()
    thought = str(data.get("thought", "")).strip()
    if data["action"] == FINAL_ACTION:
        answer = str(data.get("answer", "")).strip()
        if not answer:
            return Decision(
                notes=[f"{FINAL_ACTION} needs the complete answer in the 'answer' field."],
                thought=thought,
            )
        return Decision(
            answer=answer, citations=clean_citations(data.get("citations")), thought=thought
        )
    call = ToolCallRecord(
        id=f"s{step_no}",
        tool=data["action"],
        args=dict(data.get("action_input") or {}),
        thought=thought,
        status="run",
    )
    return Decision(calls=[call], thought=thought)


def from_native(message: AIMessage, step_no: int, tool_names: set[str]) -> Decision:
    """Decide from a tool-calling reply (``FinalAnswer`` or real tool calls)."""
    decision = Decision(thought=message.text.strip() if isinstance(message.text, str) else "")
    finals: list[dict[str, Any]] = []
    for i, call in enumerate(message.tool_calls):
        name, args = call["name"], call.get("args") or {}
        call_id = call.get("id") or f"n{step_no}_{i}"
        if name == FinalAnswer.__name__:
            finals.append(args)
        elif name not in tool_names:
            decision.calls.append(
                ToolCallRecord(
                    id=call_id,
                    tool=name,
                    args=args,
                    status="invalid",
                    feedback=f"there is no tool {name!r}; tools: {', '.join(sorted(tool_names))}",
                )
            )
        else:
            decision.calls.append(ToolCallRecord(id=call_id, tool=name, args=args, status="run"))
    for bad in message.invalid_tool_calls:
        decision.notes.append(
            f"Your call to {bad.get('name') or 'a tool'} had unreadable arguments "
            f"({bad.get('error') or 'invalid JSON'}); send valid JSON arguments."
        )
    if decision.calls:
        if finals:  # an answer given alongside tool calls cannot have seen their results
            decision.notes.append("FinalAnswer was ignored: it came with tool calls. Answer again.")
        return decision
    if finals:
        answer = str(finals[0].get("answer", "")).strip()
        if answer:
            decision.answer = answer
            decision.citations = clean_citations(finals[0].get("citations"))
        else:
            decision.notes.append("FinalAnswer needs the complete answer in 'answer'.")
        return decision
    if not decision.notes and decision.thought:
        # A plain-text reply despite tool_choice: treat it as the answer, not a failure.
        decision.answer, decision.thought = decision.thought, ""
    elif not decision.notes:
        decision.notes.append("Your reply was empty. Call a tool or give FinalAnswer.")
    return decision


def clean_citations(raw: Any) -> list[str]:
    """Citations as distinct non-empty strings, in order."""
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[str] = []
    for item in items:
        text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
        text = text.strip()
        if text and text not in out:
            out.append(text)
    return out


def call_key(tool: str, args: dict[str, Any]) -> str:
    """Identity of a call, to spot a model repeating itself."""
    return tool + json.dumps(args, sort_keys=True, default=str)
