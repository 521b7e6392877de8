"""The writer as steps: gather its inputs (code), write the prose (model), assemble (code).

The model writes only the prose, from the numbered results of the tasks it depends on.
Code does the rest: it reads those results and the sources they cited out of the context,
removes sentences stating a number that none of the inputs has (what a small model invents
first), and appends the sources — exactly those its inputs cited, never one of the model's.

    gather -> write -> assemble
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.flows.common import (
    Resources,
    Section,
    add_usage,
    clip,
    generate,
    messages,
    prose_of,
    sections_of,
    sources_in,
    unsupported_sentences,
)
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.run_context import RunContext

WRITE_TOKENS = 400
NOTE_CHARS = 2000
WRITE_SYSTEM = (
    "You are a writer. Write the text the task asks for, from the notes you are given: clear, "
    "brief, in plain sentences (short paragraphs or a short list where it helps). Use only "
    "facts from the notes and the task; copy names, terms and numbers exactly. Do not add "
    "sources, a title or a preamble."
)


class WriterState(FlowState, total=False):
    sections: list[dict[str, Any]]
    """The dependencies' results (``Section`` as a dict)."""
    draft: str


_CITATION = re.compile(r"\s*\[[^\]\s]+\.(?:md|markdown|txt)(?:#[^\]]*)?\]")
"""A passage citation in an input (``[doc.md#Heading L3-9]``): the sources are appended
by code, so the model is shown the facts without them (a third of a quoted line)."""


def notes_block(sections: list[Section]) -> str:
    """The inputs as the model sees them: numbered, without their source lists and
    citations."""
    notes = [s for s in sections if s.body]
    return "\n\n".join(
        f"Note {i}" + (f" (from task {s.task_id}, {s.agent})" if s.agent != "?" else "")
        + f":\n{clip(_CITATION.sub('', s.body).strip(), NOTE_CHARS)}"
        for i, s in enumerate(notes, 1)
    )


class WriterSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def gather(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The results of the tasks this one depends on, and their sources (code)."""
        return {"sections": [asdict(s) for s in sections_of(str(state.get("context") or ""))]}

    async def write(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes the prose from the notes."""
        task = state.get("task") or {}
        instruction = str(task.get("instruction") or state.get("goal") or "").strip()
        sections = [Section(**s) for s in state.get("sections") or []]
        parts = [f"Task: {instruction}"]
        if criteria := str(task.get("acceptance_criteria") or "").strip():
            parts.append(f"Done when: {criteria}")
        if notes := notes_block(sections):
            parts.append(f"Notes:\n{notes}")
        if feedback := str(state.get("feedback") or "").strip():
            parts.append(f"Feedback on an earlier attempt: {clip(feedback, 600)}")
        parts.append(f"{instruction}\nWrite it now, using only the task and the notes:")
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(WRITE_SYSTEM, "\n\n".join(parts)), get_config(),
            max_tokens=WRITE_TOKENS, stop=["\nNote 1", "\nSources:"],
        )  # fmt: skip
        return {"draft": text, "usage": add_usage(dict(state), n_in, n_out), "steps": 1}

    async def assemble(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The text, checked against the inputs, with the inputs' sources (code)."""
        sections = [Section(**s) for s in state.get("sections") or []]
        task = state.get("task") or {}
        material = "\n".join(
            [str(task.get("instruction") or ""), str(state.get("goal") or ""),
             *(s.body for s in sections)]
        )  # fmt: skip
        prose, _ = sources_in(prose_of(state.get("draft") or ""))  # sources come from the inputs only
        text, dropped = unsupported_sentences(prose, material)
        if not text:
            why = "it stated numbers none of its inputs has" if dropped else "no text"
            return {"output": "", "citations": [], "error": f"the writer produced no usable text: {why}"}
        sources = list(dict.fromkeys(c for s in sections for c in s.sources))
        output = text + ("\n\nSources:\n" + "\n".join(f"- {c}" for c in sources) if sources else "")
        return {"output": output, "citations": sources, "error": None}


def build_writer(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled writer flow."""
    steps = WriterSteps(resources)
    builder = StateGraph(
        WriterState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("gather", steps.gather)
    builder.add_node("write", steps.write)
    builder.add_node("assemble", steps.assemble)
    builder.add_edge(START, "gather")
    builder.add_edge("gather", "write")
    builder.add_edge("write", "assemble")
    builder.add_edge("assemble", "__end__")
    return builder.compile(name=name)
