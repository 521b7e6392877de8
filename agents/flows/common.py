"""What every step flow shares: the model call, usage bookkeeping, prompt layout.

Prompts are laid out for the server's prompt cache: the system message (an agent's stable
instructions) is byte-identical across calls of the same step, and everything that changes
(the task, its context, earlier results) comes last, in the user message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agents.flows.code_text import pytest_summary
from agents.run_context import RunContext, context_of, thread_id_of
from agents.state import ModelFactory, add_usage
from core.models import StructuredOutputError, ainvoke_structured
from core.models.structured import M, Usage
from core.text import estimate_tokens, truncate
from tools.context import ToolContext
from tools.sandbox import run_sandboxed

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


# -- the inputs a step flow is given ---------------------------------------------------------

_RESULT_HEADER = re.compile(r"^## (Partial result|Result) of task (\S+) \(([^)]*)\)\s*$", re.M)
"""How graph/context.py heads each dependency's result in a worker's context (a failed
task's partial work: ``## Partial result of task …``)."""
_SOURCES_LINE = re.compile(r"^Sources?:[ \t]*(\S.*)$", re.M)
_SOURCES_BLOCK = re.compile(r"^Sources?:[ \t]*\n((?:[ \t]*[-*] .*\n?)+)", re.M)


@dataclass
class Section:
    """One dependency's result: who made it, its text, the sources it cited."""

    task_id: str
    """The dependency's task id ("context" when the context had no headers)."""
    agent: str
    """The agent that made it ("?" when unknown)."""
    body: str
    """Its text, without its sources."""
    sources: list[str] = field(default_factory=list)
    """The sources it cited."""
    partial: bool = False
    """The task failed; this is the work it left (incomplete, to be said so)."""


def sources_in(text: str) -> tuple[str, list[str]]:
    """``text`` without its ``Sources:`` line or list, and the sources they named."""
    sources: list[str] = []
    for block in _SOURCES_BLOCK.findall(text):
        sources += [line.strip()[2:].strip() for line in block.splitlines() if line.strip()]
    text = _SOURCES_BLOCK.sub("", text)
    for line in _SOURCES_LINE.findall(text):
        sources += [s.strip() for s in line.split(";") if s.strip()]
    text = _SOURCES_LINE.sub("", text)
    return text.strip(), list(dict.fromkeys(sources))


def sections_of(context: str) -> list[Section]:
    """The dependency results in a worker's context, each with its sources (code reads them,
    so a writer carries exactly the sources its inputs had, and a reviewer checks them)."""
    heads = list(_RESULT_HEADER.finditer(context))
    if not heads:
        body, sources = sources_in(context)
        return [Section("context", "?", body, sources)] if body or sources else []
    sections = []
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        chunk = context[head.end() : after.start() if after else len(context)]
        body, sources = sources_in(chunk)
        partial = head.group(1).startswith("Partial")
        sections.append(Section(head.group(2), head.group(3), body, sources, partial))
    return sections


_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:%)?")
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(*-])")


def _numbers(text: str) -> set[str]:
    return {n.rstrip("%").replace(",", "") for n in _NUMBER.findall(text)}


def unsupported_sentences(text: str, material: str) -> tuple[str, list[str]]:
    """``text`` without the sentences that state a number found nowhere in ``material`` (what
    a small model invents first), and the sentences dropped. Lines are kept whole otherwise."""
    known = _numbers(material)
    kept_lines: list[str] = []
    dropped: list[str] = []
    for line in text.splitlines():
        kept = []
        for sentence in _SENTENCES.split(line):
            if _numbers(sentence) - known:
                dropped.append(sentence.strip())
            else:
                kept.append(sentence)
        if kept or not line.strip():
            kept_lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip(), dropped


def prose_of(reply: str) -> str:
    """A prose reply without what small models loop into: cut before the first line that
    repeats ``REPEATS`` times, and before a trailing unfinished sentence."""
    lines = reply.strip().splitlines()
    for end in range(1, len(lines) + 1):
        if looping("\n".join(lines[:end]) + "\n"):
            lines = lines[: end - 1]
            break
    text = "\n".join(lines).strip()
    last = text.splitlines()[-1].strip() if text else ""
    if last and not last.startswith(("-", "*", "#", "|")) and not last.endswith((".", "!", "?", ":", ")", "]")):
        cut = max(text.rfind(". "), text.rfind(".\n"))
        if cut > len(text) // 2:
            text = text[: cut + 1]
    return text.strip()


# -- running tests ---------------------------------------------------------------------------


@dataclass
class PytestRun:
    """A pytest run in the sandbox."""

    passed: bool
    summary: str
    output: str


async def run_pytest(ctx: ToolContext, root: Path, targets: Sequence[str]) -> PytestRun:
    """pytest on ``targets`` (paths in the workspace ``root``) in the sandbox."""
    code = (
        "import sys, pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{list(targets)!r}]))\n"
    )
    result = await run_sandboxed(code, root, ctx.sandbox)
    output = (result.stdout + ("\n" + result.stderr if result.stderr else "")).strip()
    if result.reason:
        output = f"{output}\n({result.reason})".strip()
    summary = pytest_summary(output) or (
        f"exit code {result.exit_code}" + (f": {result.reason}" if result.reason else "")
    )
    return PytestRun(passed=result.ok, summary=summary, output=output)


__all__ = [
    "BaseModel",
    "PytestRun",
    "Section",
    "add_usage",
    "clip",
    "decide",
    "generate",
    "messages",
    "prose_of",
    "run_pytest",
    "sections_of",
    "sources_in",
    "task_block",
    "unsupported_sentences",
    "usage_of",
]
