"""What every step flow shares: the model call, usage bookkeeping, prompt layout.

Prompts are laid out for the server's prompt cache: the system message (an agent's stable
instructions) is byte-identical across calls of the same step, and everything that changes
(the task, its context, earlier results) comes last, in the user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agents.run_context import RunContext, context_of, thread_id_of
from agents.state import ModelFactory, TaskUsage, add_usage
from core.models import StructuredOutputError, ainvoke_structured
from core.models.structured import M, Usage
from core.text import estimate_tokens, truncate
from tools.context import ToolContext

CONTEXT_CHARS = 3000
"""Characters of dependency context a step sees (the supervisor already budgets it)."""


class Resources:
    """A flow's per-run resources, from the run's context (``model_factory``: tests)."""

    def __init__(self, role: str, model_factory: ModelFactory | None = None) -> None:
        self.role = role
        self.model_factory = model_factory

    async def model(self, runtime: Runtime[RunContext], role: str | None = None) -> BaseChatModel:
        return await context_of(runtime).chat_model(role or self.role, self.model_factory)

    def tools(self, runtime: Runtime[RunContext]) -> ToolContext:
        return context_of(runtime).tools(thread_id_of(get_config()))


def messages(system: str, user: str) -> list[BaseMessage]:
    """The stable part first (system), the changing part last (user)."""
    return [SystemMessage(system), HumanMessage(user)]


def clip(text: str, limit: int) -> str:
    return truncate(text.strip(), limit, mark="…")


def task_block(state: dict[str, Any], context_chars: int = CONTEXT_CHARS) -> str:
    """The task as the changing part of a prompt: instruction, criteria, context, feedback."""
    task = state.get("task") or {}
    parts = [f"Task: {str(task.get('instruction') or state.get('goal') or '').strip()}"]
    criteria = str(task.get("acceptance_criteria") or "").strip()
    if criteria:
        parts.append(f"Done when: {criteria}")
    context = str(state.get("context") or "").strip()
    if context:
        parts.append(f"Results of earlier tasks:\n{clip(context, context_chars)}")
    feedback = str(state.get("feedback") or "").strip()
    if feedback:
        parts.append(f"Feedback on an earlier attempt: {clip(feedback, 600)}")
    return "\n\n".join(parts)


REPEATS = 3
"""A reply line seen this many times means the model is looping: stop reading."""


def looping(text: str) -> bool:
    """Whether the finished lines of ``text`` repeat one line ``REPEATS`` times (small
    models fall into loops of identical asserts or list items until the token cap)."""
    lines = [line.strip() for line in text.splitlines()[:-1] if len(line.strip()) > 8]
    return any(lines.count(line) >= REPEATS for line in set(lines[-REPEATS * 2 :]))


async def generate(
    model: BaseChatModel,
    prompt: Sequence[BaseMessage],
    config: RunnableConfig | None,
    *,
    max_tokens: int,
    stop: list[str] | None = None,
) -> tuple[str, int, int]:
    """One plain-text call, streamed: (text, prompt tokens, completion tokens).

    Streaming lets a looping reply be cut off early (closing the stream stops the server's
    generation) instead of running to the token cap."""
    kwargs: dict[str, Any] = {"max_completion_tokens": max_tokens}
    if stop:
        kwargs["stop"] = stop
    parts: list[str] = []
    meta = None
    async for chunk in model.bind(**kwargs).astream(list(prompt), config):
        parts.append(str(chunk.text))
        meta = getattr(chunk, "usage_metadata", None) or meta
        if "\n" in parts[-1] and looping("".join(parts)):
            break
    text = "".join(parts)
    if meta:
        return text, int(meta["input_tokens"]), int(meta["output_tokens"])
    n_in = estimate_tokens(list(prompt))
    return text, n_in, estimate_tokens([AIMessage(content=text)])


async def decide(
    model: BaseChatModel,
    schema: type[M],
    prompt: Sequence[BaseMessage],
    config: RunnableConfig | None,
) -> tuple[M | None, Usage, str | None]:
    """One schema-constrained decision: (value or None, usage, error)."""
    try:
        result = await ainvoke_structured(model, schema, list(prompt), config=config, attempts=2)
    except StructuredOutputError as err:
        return None, err.usage, str(err).splitlines()[0]
    return result.value, result.usage, None


def usage_of(usage: Usage) -> tuple[int, int, int]:
    return usage.input_tokens, usage.output_tokens, usage.calls


__all__ = [
    "BaseModel",
    "TaskUsage",
    "add_usage",
    "clip",
    "decide",
    "generate",
    "messages",
    "task_block",
    "usage_of",
]
