"""The writer as steps: gather its inputs (code), write the prose (model), assemble (code).

The model writes only the prose, from the numbered results of the tasks it depends on.
Code does the rest: it reads those results and the sources they cited out of the context,
removes sentences stating a number that none of the inputs has (what a small model invents
first), and appends the sources — exactly those its inputs cited, never one of the model's.

Whether the text is a table is the model's judgment (a choice among labelled forms under
constrained decoding: comparison table, summary, email, explanation, report). A table's content comes from the
model as data — first its plan from the task (the items, the points compared; checked to
be labels), then each item's row from the notes that name it, under a schema with exactly
those columns, so decoding keeps each cell in its place — and code
renders it (``table_of``): one header row, its rule,
every row as many cells as the header, no cell stating a number none of the inputs has.
Prose that the model laid out as a table anyway is repaired the same way (``fix_tables``).
A dependency that failed and left partial work is labelled so in the notes, and the text
says which of its inputs were partial.

    gather -> layout -> write | tabulate (-> write, when no table came) -> assemble
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from agents.flows.common import (
    Resources,
    Section,
    add_usage,
    clip,
    decide,
    generate,
    messages,
    prose_of,
    sections_of,
    sources_in,
    unsupported_sentences,
    usage_of,
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


LAYOUT_SYSTEM = (
    "You say which form of text a task asks for: a comparison table (items compared side by "
    "side on the same points), a summary, an email, an explanation or a report."
)
COLUMNS_SYSTEM = (
    "You plan a table for a task. Name the items the task compares (they become the rows, "
    "by name only), and the points on which they are compared (the columns): each point a "
    "short heading of one to three words, never an item and never a value."
)
ROWS_SYSTEM = (
    "You fill in one row of a table from the notes you are given: a short cell for each "
    "point, about the item named. Copy names, terms and numbers exactly from the notes; "
    "leave a cell empty when the notes do not say."
)
MAX_COLUMNS = 6
MAX_ROWS = 8
MISSING = "—"
"""What a cell shows when the model's content for it is not borne out by the inputs."""


FORMS = ("comparison table", "summary", "email", "explanation", "report")
"""The labelled forms the model chooses among. Measured on the embedded 0.5B model (eight
tasks, half of them tables): this choice 8/8; a yes/no "should it be a table?" 4/8 (it
answered yes to nearly everything)."""


class Layout(BaseModel):
    """The form of the text the task asks for."""

    form: Literal["comparison table", "summary", "email", "explanation", "report"] = Field(
        description="The form the task asks for."
    )


HEADING_WORDS = 5
"""A heading (an item or a point) longer than this is a sentence or a value, not a label."""


class Columns(BaseModel):
    """A table's plan: the items (rows), the points compared (columns), what a row is."""

    items: list[str] = Field(
        min_length=1, max_length=MAX_ROWS, description="The names of the items compared, one per row."
    )
    points: list[str] = Field(
        min_length=1, max_length=MAX_COLUMNS - 1,
        description="The points on which the items are compared: short column headings.",
    )
    item: str = Field(description="What each row is about: the kind of item compared.")


def _label(text: str) -> str:
    return " ".join(text.split()).strip(" :-*")


def planned(plan: Columns) -> tuple[str, list[str], list[str]]:
    """The plan, checked: items and points that are labels (short, no figures), each once;
    a point that names an item left out (the model mixed rows and columns up there), and a
    kind of item that names one of the items replaced by "Item". None of either: no table."""
    def labels(texts: list[str], taken: set[str]) -> list[str]:
        found: list[str] = []
        for text in map(_label, texts):
            key = text.lower()
            if (text and len(text.split()) <= HEADING_WORDS and not re.search(r"\d", text)
                    and key not in taken and all(key not in t and t not in key for t in taken if t)):
                found.append(text)
                taken.add(key)
        return found

    items = labels(plan.items, set())
    head = _label(plan.item)
    if not head or len(head.split()) > HEADING_WORDS or head.lower() in (i.lower() for i in items):
        head = "Item"  # the model named an item as the kind of item
    points = labels(plan.points, {head.lower(), *(i.lower() for i in items)})
    return head, items[:MAX_ROWS], points[: MAX_COLUMNS - 1]


def field_names(labels: list[str]) -> list[str]:
    """A schema field name for each label: its words in snake case, unique."""
    names: list[str] = []
    for i, label in enumerate(labels):
        name = re.sub(r"\W+", "_", label.lower()).strip("_")
        if not name or name[0].isdigit() or name in names:
            name = f"field_{i + 1}"
        names.append(name)
    return names


def row_schema(points: list[str]) -> type[BaseModel]:
    """The schema of one row's cells: one field per point, named after it, so constrained
    decoding fills exactly these columns (a small model's free list of cells drifts from
    column to column)."""
    fields: dict[str, Any] = {
        name: (str, Field(default="", description=point))
        for name, point in zip(field_names(points), points, strict=True)
    }
    return create_model("Row", __doc__="The cells of one item.", **fields)


def notes_on(item: str, notes: str) -> str:
    """The lines of ``notes`` that name ``item`` (all of them when none does): a small model
    fills a row from the lines about its item, not from the last item it read about."""
    lines = [line for line in notes.splitlines()
             if re.search(rf"(?<!\w){re.escape(item.lower())}(?!\w)", line.lower())]
    return "\n".join(lines) if lines else notes


class WriterState(FlowState, total=False):
    sections: list[dict[str, Any]]
    """The dependencies' results (``Section`` as a dict)."""
    layout: str
    """``table`` or ``prose``: the model's judgment of the task."""
    draft: str
    table: dict[str, Any]
    """The model's table content (``Table`` as a dict), when the layout is a table."""


def _cell(text: object) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(str(text).split())).strip()  # escaped once


def table_of(columns: list[str], rows: list[list[str]], material: str) -> tuple[str, int]:
    """A markdown table, validated: a non-empty header row and its rule; each row cut or
    padded to the header's width; empty rows and repeats of the header left out; a cell that
    states a number none of the inputs (``material``) has shown as ``MISSING``. Returns
    (table, cells replaced); an empty table when fewer than two columns or no row is left."""
    header = [_cell(c) for c in columns]
    while header and not header[-1]:
        header.pop()
    if len(header) < 2 or not all(header):
        return "", 0
    replaced = 0
    body: list[list[str]] = []
    for row in rows:
        cells = ([_cell(c) for c in row] + [""] * len(header))[: len(header)]
        if not any(cells) or [c.lower() for c in cells] == [h.lower() for h in header]:
            continue
        for i, cell in enumerate(cells):
            if cell and unsupported_sentences(cell, material)[1]:
                cells[i] = MISSING
                replaced += 1
        body.append(cells)
    if not body:
        return "", replaced

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c or " " for c in cells) + " |"

    rule = "|" + "|".join("---" for _ in header) + "|"
    return "\n".join([line(header), rule, *map(line, body)]), replaced


_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_RULE_CELL = re.compile(r"^:?-{2,}:?$")


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def fix_tables(text: str, material: str) -> str:
    """``text`` with each block of ``|``-lines re-rendered by ``table_of``: the first line
    the header, a rule line wherever it was dropped, every row as wide as the header."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if not block:
            return
        rows = [_split_row(line) for line in block]
        rows = [r for r in rows if not all(_RULE_CELL.match(c) for c in r if c)]
        table, _ = table_of(rows[0], rows[1:], material) if rows else ("", 0)
        out.extend(table.splitlines() if table else block)
        block.clear()

    for line in text.splitlines():
        if _TABLE_LINE.match(line):
            block.append(line)
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def partial_note(sections: list[Section]) -> str:
    """What the text says about inputs that were a failed task's partial work."""
    partial = [f"{s.task_id} ({s.agent})" for s in sections if s.partial]
    if not partial:
        return ""
    return ("Note: this text rests in part on the partial work of task "
            f"{', '.join(partial)}, which failed; it may be incomplete.")


_CITATION = re.compile(r"\s*\[[^\]\s]+\.(?:md|markdown|txt)(?:#[^\]]*)?\]")
"""A passage citation in an input (``[doc.md#Heading L3-9]``): the sources are appended
by code, so the model is shown the facts without them (a third of a quoted line)."""


def notes_block(sections: list[Section]) -> str:
    """The inputs as the model sees them: numbered, without their source lists and
    citations; a failed task's partial work labelled so."""
    notes = [s for s in sections if s.body]
    return "\n\n".join(
        f"Note {i}" + (f" (from task {s.task_id}, {s.agent})" if s.agent != "?" else "")
        + (" (partial: that task failed)" if s.partial else "")
        + f":\n{clip(_CITATION.sub('', s.body).strip(), NOTE_CHARS)}"
        for i, s in enumerate(notes, 1)
    )


class WriterSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def gather(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The results of the tasks this one depends on, and their sources (code)."""
        return {"sections": [asdict(s) for s in sections_of(str(state.get("context") or ""))]}

    def _parts(self, state: WriterState) -> tuple[str, list[str]]:
        """The task's instruction, and the prompt's parts: task, criteria, notes, feedback."""
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
        return instruction, parts

    async def layout(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model judges which form the task asks for (a labelled choice, constrained)."""
        task = state.get("task") or {}
        asked = str(task.get("instruction") or "").strip()
        goal = str(state.get("goal") or "").strip()
        user = f"Task: {asked or goal}" + (f"\nThe user's goal: {goal}" if goal and goal != asked else "")
        user += "\n\nWhich form of text does it ask for?"
        model = await self.res.model(runtime)
        value, usage, _ = await decide(model, Layout, messages(LAYOUT_SYSTEM, user), get_config())
        return {"layout": "table" if value is not None and value.form == FORMS[0] else "prose",
                "usage": add_usage(dict(state), *usage_of(usage)), "steps": 1}

    def after_layout(self, state: WriterState) -> Literal["write", "tabulate"]:
        return "tabulate" if state.get("layout") == "table" else "write"

    async def tabulate(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model plans the table from the task (the items, the points compared), then
        fills each item's row from the notes that name it, under a schema with exactly those
        columns (all constrained); code renders it."""
        task = state.get("task") or {}
        instruction = str(task.get("instruction") or state.get("goal") or "").strip()
        goal = str(state.get("goal") or "").strip()
        asked = f"Task: {instruction}" + (f"\nThe user's goal: {goal}" if goal and goal not in instruction else "")
        model = await self.res.model(runtime)
        plan, usage, _ = await decide(model, Columns, messages(COLUMNS_SYSTEM, f"{asked}\n\nPlan the table for this task."),
                                      get_config())  # fmt: skip
        calls = [usage]
        table: dict[str, Any] = {}
        head, items, points = planned(plan) if plan is not None else ("", [], [])
        if items and points:
            notes = notes_block([Section(**x) for x in state.get("sections") or []]) or instruction
            schema = row_schema(points)
            rows: list[list[str]] = []
            for item in items:
                ask = (f"Notes:\n{clip(notes_on(item, notes), NOTE_CHARS)}\n\n"
                       f"Fill in the row of {item}: its {', '.join(points)}.")
                cells, usage, _ = await decide(model, schema, messages(ROWS_SYSTEM, ask), get_config())
                calls.append(usage)
                values = cells.model_dump().values() if cells is not None else ["" for _ in points]
                rows.append([item, *(str(v or "") for v in values)])
            table = {"columns": [head, *points], "rows": rows}
        counted = dict(state)
        for u in calls:
            counted["usage"] = add_usage(counted, *usage_of(u))
        return {"table": table, "usage": counted["usage"], "steps": 1}

    def after_tabulate(self, state: WriterState) -> Literal["write", "assemble"]:
        return "assemble" if state.get("table") else "write"  # no usable table: prose instead

    async def write(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes the prose from the notes."""
        instruction, parts = self._parts(state)
        parts.append(f"{instruction}\nWrite it now, using only the task and the notes:")
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(WRITE_SYSTEM, "\n\n".join(parts)), get_config(),
            max_tokens=WRITE_TOKENS, stop=["\nNote 1", "\nSources:"],
        )  # fmt: skip
        return {"draft": text, "table": {}, "usage": add_usage(dict(state), n_in, n_out), "steps": 1}

    async def assemble(self, state: WriterState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The text, checked against the inputs, with the inputs' sources (code)."""
        sections = [Section(**s) for s in state.get("sections") or []]
        task = state.get("task") or {}
        material = "\n".join(
            [str(task.get("instruction") or ""), str(state.get("goal") or ""),
             *(s.body for s in sections)]
        )  # fmt: skip
        dropped: list[str] = []
        table = state.get("table") or {}
        text = ""
        if table:
            text, _ = table_of(list(table.get("columns") or []), list(table.get("rows") or []), material)
        if not text:
            prose, _ = sources_in(prose_of(state.get("draft") or ""))  # sources come from the inputs only
            text, dropped = unsupported_sentences(fix_tables(prose, material), material)
        if not text:
            why = "it stated numbers none of its inputs has" if dropped else "no text"
            return {"output": "", "citations": [], "error": f"the writer produced no usable text: {why}"}
        if note := partial_note(sections):
            text += "\n\n" + note
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
    builder.add_node("layout", steps.layout)
    builder.add_node("tabulate", steps.tabulate)
    builder.add_node("write", steps.write)
    builder.add_node("assemble", steps.assemble)
    builder.add_edge(START, "gather")
    builder.add_edge("gather", "layout")
    builder.add_conditional_edges("layout", steps.after_layout)
    builder.add_conditional_edges("tabulate", steps.after_tabulate)
    builder.add_edge("write", "assemble")
    builder.add_edge("assemble", "__end__")
    return builder.compile(name=name)
