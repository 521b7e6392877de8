"""The analyst as steps: code finds the data and profiles it, the model writes one query,
code runs it, the model interprets the figures, code checks and cites them.

    locate (code) -> query (model: one SELECT, schema-constrained) -> run (code)
        -> [query again, told the error, once] -> interpret (model) -> report (code)

Code determines what it can: which data file (the one the task names, else every .csv or
SQLite file in the workspace), its tables and columns, a profile of each table (rows; sum,
mean, min and max of every numeric column), and the grouping a task names outright by
column; these hold exact figures even when the model's query fails.

What dependents get is data: the figures lead the answer as markdown tables, each under
the query that computed it, so a writer copies rows, not a paraphrase. The model's reading
follows, checked by code against the figures (``checked_reading``): a sentence is dropped
when it states a number found in no result, or attributes a result's figure to a label that
is not that figure's row. The figures are cited by file and query.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.flows.common import (
    Resources,
    add_usage,
    clip,
    decide,
    generate,
    messages,
    prose_of,
    unsupported_sentences,
    usage_of,
)
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.run_context import RunContext
from tools.base import ToolInputError
from tools.data import SQLITE_SUFFIXES, run_query, table_name_for

DATA_SUFFIXES = (".csv", *SQLITE_SUFFIXES)
MAX_TABLES = 6
INTERPRET_TOKENS = 300
FIGURES_CHARS = 3000
QUERY_SYSTEM = (
    "You write one SQLite SELECT statement that computes what the task asks from the tables "
    "shown. Use only the tables and columns listed; aggregate with SUM, AVG, COUNT and GROUP BY "
    "where the task asks for totals or averages per group; ORDER BY the main figure."
)
INTERPRET_SYSTEM = (
    "You are a data analyst. Answer the task from the query results only: state the figures "
    "exactly as they appear in the results, then what they show, in 2 to 6 short sentences or "
    "a short list. Never guess a number."
)


class Query(BaseModel):
    """One read-only query on a data file."""

    source: str = Field(description="The data file to query, exactly as listed.")
    sql: str = Field(description="One SQLite SELECT statement.")


class AnalystState(FlowState, total=False):
    sources: list[str]
    schema_text: str
    results: list[dict[str, str]]
    """``{"source", "sql", "table"}`` of each query that ran (the profile's first)."""
    query_error: str
    queries: int
    draft: str


def data_files(root: Path, text: str) -> list[str]:
    """The data files the task should use: those it names, else all in the workspace."""
    found = sorted(
        str(p.relative_to(root)) for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith(".")
    )  # fmt: skip
    named = [f for f in found if Path(f).name.lower() in text.lower()]
    return named or found


def _columns(table_output: str) -> list[str]:
    lines = table_output.splitlines()
    return [c.strip() for c in lines[1].split(" | ")] if len(lines) > 1 else []


def _tables(root: Path, source: str) -> list[str]:
    if source.lower().endswith(".csv"):
        return [table_name_for(root / source)]
    out = run_query(root, "SELECT name FROM sqlite_master WHERE type IN ('table','view') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name", source)  # fmt: skip
    return [line.strip() for line in out.splitlines()[2:] if line.strip()][:MAX_TABLES]


def named(column: str, words: set[str]) -> bool:
    """Whether a text with ``words`` names ``column``: as written, or by all the parts of a
    compound name (``shipping_method`` <- "shipping method")."""
    name = column.lower()
    parts = [p for p in re.split(r"[_\W]+", name) if p]
    return name in words or (len(parts) > 1 and all(p in words for p in parts))


def grouped_query(text: str, table: str, columns: list[str], numeric: list[str]) -> str | None:
    """The query a task naming a figure and the columns to break it down by asks for: the
    numeric columns it names (else all), summed (averaged if it says so) by the other
    columns it names; None when it names no column to group by."""
    words = set(re.findall(r"[a-z0-9_]+", text.lower()))
    groups = [c for c in columns if c not in numeric and named(c, words)]
    values = [c for c in numeric if named(c, words)] or numeric
    if not groups or not values:
        return None
    fn = "AVG" if words & {"average", "mean", "avg"} else "SUM"
    keys = ", ".join(f'"{g}"' for g in groups)
    aggs = ", ".join(f'{fn}("{v}") AS "{fn.lower()}_{v}"' for v in values)
    return f'SELECT {keys}, {aggs}, COUNT(*) AS rows FROM "{table}" GROUP BY {keys} ORDER BY {keys}'


_GROUP_BY = re.compile(r"\bGROUP\s+BY\s+(.+?)(?=\s+(?:HAVING|ORDER|LIMIT|WINDOW)\b|\s*;|\s*$)", re.I | re.S)
_SELECT = re.compile(r"^\s*SELECT\s+(?!DISTINCT\b)", re.I)


def with_group_keys(sql: str) -> str:
    """``sql`` with the columns it groups by selected too, first, when it leaves them out
    (``SELECT COUNT(*) FROM t GROUP BY region`` gives counts no reader can tell apart):
    only for a plain one-level SELECT grouped by named columns; else ``sql`` unchanged."""
    group, select, source = _GROUP_BY.search(sql), _SELECT.match(sql), re.search(r"\bFROM\b", sql, re.I)
    if not group or not select or not source or len(re.findall(r"\bSELECT\b", sql, re.I)) != 1:
        return sql
    keys = [k.strip() for k in group.group(1).split(",")]
    if not all(re.fullmatch(r'"?[A-Za-z_]\w*"?(?:\."?[A-Za-z_]\w*"?)?', k) for k in keys):
        return sql  # positions, expressions: left as they are
    if re.search(r"\bORDER\s+BY\s+\d", sql, re.I):
        return sql  # ordered by position: a column added first would change the order
    selected = sql[select.end() : source.start()]
    missing = [k for k in keys if k.strip('"').split(".")[-1].strip('"').lower() not in selected.lower()]
    if not missing:
        return sql
    return _SELECT.sub(lambda m: m.group(0) + ", ".join(missing) + ", ", sql, count=1)


def profile(root: Path, source: str, text: str = "") -> tuple[str, list[dict[str, str]]]:
    """Each table of ``source``: its columns and a sample, the profile of its numeric columns
    and the grouping the task ``text`` asks for, computed by SQL (blocking). Returns (schema
    text for the model, results)."""
    schema: list[str] = []
    results: list[dict[str, str]] = []
    for table in _tables(root, source):
        sample = run_query(root, f'SELECT * FROM "{table}" LIMIT 3', source)
        columns = _columns(sample)
        schema.append(f"{source}: table {table}({', '.join(columns)})\nSample rows:\n"
                      + "\n".join(sample.splitlines()[1:]))  # fmt: skip
        if not columns:
            continue
        kinds = run_query(root, "SELECT " + ", ".join(
            f"SUM(typeof(\"{c}\") IN ('integer','real')) = COUNT(\"{c}\") AND COUNT(\"{c}\") > 0"
            for c in columns) + f' FROM "{table}"', source)  # fmt: skip
        flags = [v.strip() == "1" for v in kinds.splitlines()[2].split(" | ")] if len(kinds.splitlines()) > 2 else []
        numeric = [c for c, f in zip(columns, flags, strict=False) if f]
        stats = ["COUNT(*) AS rows"] + [
            f'{fn}("{c}") AS "{fn.lower()}_{c}"' for c in numeric for fn in ("SUM", "AVG", "MIN", "MAX")
        ]
        sql = f"SELECT {', '.join(stats)} FROM \"{table}\""
        results.append({"source": source, "sql": sql, "table": run_query(root, sql, source)})
        if grouped := grouped_query(text, table, columns, numeric):
            results.insert(0, {"source": source, "sql": grouped, "table": run_query(root, grouped, source)})
    return "\n\n".join(schema), results


def results_block(results: list[dict[str, str]]) -> str:
    return "\n\n".join(f"Query on {r['source']}: {r['sql']}\n{r['table']}" for r in results)


def rows_of(table: str) -> tuple[list[str], list[list[str]], str]:
    """``run_query``'s text as (header, rows, trailing note): its first line describes the
    source, the second names the columns, then one `` | ``-separated line per row (a ``|``
    inside a value is escaped), then perhaps a note that rows were left out."""
    lines = table.splitlines()
    if len(lines) < 2:
        return [], [], ""
    header = [c.strip() for c in lines[1].split(" | ")]
    rows, note = [], ""
    for line in lines[2:]:
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) == len(header):
            rows.append(cells)
        else:
            note = line.strip()
    return header, rows, note


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table: a header row, its rule, one row each, as many cells in each."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("\n", " ") or " " for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)])


def figures_block(results: list[dict[str, str]]) -> str:
    """Each result as a markdown table under the query that computed it."""
    blocks = []
    for r in results:
        header, rows, note = rows_of(r["table"])
        body = markdown_table(header, rows) if header else r["table"]
        blocks.append(f"Query on {r['source']}: `{r['sql']}`\n\n{body}" + (f"\n\n{note}" if note else ""))
    return "\n\n".join(blocks)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _names(label: str, said: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", said) is not None


def misattributed(sentence: str, results: list[dict[str, str]]) -> bool:
    """Whether ``sentence`` states a figure of the results only beside a wrong label: each
    number it states that appears in a result must appear in a one-row result without
    labels (a total) or in a row one of whose labels (its text cells) the sentence names.
    A row of a several-row result without labels (a query that grouped by a column it did
    not select) bears out no sentence: which group a figure belongs to is unknown."""
    said = sentence.lower()
    rows: list[tuple[list[str], list[str], bool]] = []  # (cells, labels, a total)
    for r in results:
        found = rows_of(r["table"])[1]
        for cells in found:
            labels = [c for c in cells if c and c != "NULL" and _number(c) is None]
            rows.append((cells, labels, len(found) == 1 and not labels))
    for raw in _NUMBER.findall(sentence):
        value = _number(raw)
        if value is None:
            continue
        holding = [(labels, total) for cells, labels, total in rows if any(_number(c) == value for c in cells)]
        if holding and not any(total or any(_names(c, said) for c in labels) for labels, total in holding):
            return True
    return False


_LIST_NUMBER = re.compile(r"^(\s*)\d{1,2}[.)]\s+", re.M)


def checked_reading(draft: str, results: list[dict[str, str]], material: str) -> tuple[str, list[str]]:
    """The model's reading with the sentences the figures do not bear out removed: a number
    in none of the results (nor the task or its inputs), or a figure given to the wrong row."""
    # A numbered list's markers are not figures: bullets instead, so they are not checked.
    text, dropped = unsupported_sentences(_LIST_NUMBER.sub(r"\1- ", prose_of(draft)), material)
    kept: list[str] = []
    for line in text.splitlines():
        parts = [p for p in _SENTENCE.split(line)]
        good = [p for p in parts if not misattributed(p, results)]
        dropped += [p.strip() for p in parts if p not in good]
        if good or not line.strip():
            kept.append(" ".join(good))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), dropped


class AnalystSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    def _task(self, state: AnalystState) -> str:
        task = state.get("task") or {}
        text = f"Task: {str(task.get('instruction') or state.get('goal') or '').strip()}"
        if criteria := str(task.get("acceptance_criteria") or "").strip():
            text += f"\nDone when: {criteria}"
        if feedback := str(state.get("feedback") or "").strip():
            text += f"\nFeedback on an earlier attempt: {clip(feedback, 500)}"
        return text

    async def locate(self, state: AnalystState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The data files, their tables and the profile of each (code)."""
        root = await asyncio.to_thread(self.res.tools(runtime).ensure_workspace)
        text = f"{(state.get('task') or {}).get('instruction', '')} {state.get('goal', '')}"
        sources = await asyncio.to_thread(data_files, root, text)
        schemas, results = [], []
        for source in sources[:3]:
            try:
                schema, found = await asyncio.to_thread(profile, root, source, text)
            except ToolInputError as err:
                schema, found = f"{source}: unreadable ({clip(str(err), 200)})", []
            schemas.append(schema)
            results += found
        return {"sources": sources[:3], "schema_text": "\n\n".join(schemas), "results": results}

    async def query(self, state: AnalystState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes one SELECT for the task (schema-constrained)."""
        user = f"{self._task(state)}\n\nData:\n{clip(state.get('schema_text') or '', 2500)}"
        if state.get("query_error"):
            user += f"\n\nYour last query failed: {clip(state['query_error'], 400)}\nWrite a corrected one."
        model = await self.res.model(runtime)
        value, usage, error = await decide(model, Query, messages(QUERY_SYSTEM, user), get_config())
        update: dict[str, Any] = {
            "usage": add_usage(dict(state), *usage_of(usage)),
            "steps": state.get("steps", 0) + 1, "queries": state.get("queries", 0) + 1,
        }  # fmt: skip
        if value is None:
            return {**update, "query_error": error or "no query"}
        sources = state.get("sources") or []
        source = value.source if value.source in sources else sources[0]
        root = await asyncio.to_thread(self.res.tools(runtime).ensure_workspace)
        sql = value.sql
        try:
            labelled = with_group_keys(sql)
            try:
                table = await asyncio.to_thread(run_query, root, labelled, source)
                sql = labelled
            except ToolInputError:
                if labelled == sql:
                    raise
                table = await asyncio.to_thread(run_query, root, sql, source)
        except ToolInputError as err:
            return {**update, "query_error": str(err)}
        ran = {"source": source, "sql": " ".join(sql.split()), "table": table}
        return {**update, "query_error": "", "results": [ran, *(state.get("results") or [])]}

    async def interpret(self, state: AnalystState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model states and explains the figures, from the results only."""
        context = str(state.get("context") or "").strip()
        parts = [self._task(state)]
        if state.get("results"):
            parts.append(f"Query results:\n{clip(results_block(state['results']), 3000)}")
        if context:
            parts.append(f"Results of earlier tasks:\n{clip(context, 2000)}")
        parts.append("Answer the task from these results:")
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(INTERPRET_SYSTEM, "\n\n".join(parts)), get_config(),
            max_tokens=INTERPRET_TOKENS, stop=["\nQuery results:", "\nQuery on "],
        )  # fmt: skip
        return {"draft": text, "usage": add_usage(dict(state), n_in, n_out),
                "steps": state.get("steps", 0) + 1}  # fmt: skip

    async def report(self, state: AnalystState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The answer with its figures checked against the results, the queries cited."""
        results = state.get("results") or []
        if not results and not str(state.get("context") or "").strip():
            return {"output": "", "citations": [],
                    "error": "no data to analyze: no .csv or SQLite file in the workspace"}  # fmt: skip
        material = "\n".join([results_block(results), str(state.get("context") or ""),
                              str((state.get("task") or {}).get("instruction") or "")])  # fmt: skip
        text, _ = checked_reading(state.get("draft") or "", results, material)
        lines: list[str] = []
        if results:
            lines += ["Figures (computed by SQL):", "", clip(figures_block(results), FIGURES_CHARS), ""]
        if text:
            lines += ["Reading of the figures:" if results else "", text]
        elif results:
            lines += ["(The model's reading of the figures did not match them; the figures stand alone.)"]
        citations = [f"{r['source']}: {r['sql']}" for r in results]
        return {"output": "\n".join(lines).strip(), "citations": citations, "error": None}

    def after_locate(self, state: AnalystState) -> Literal["query", "interpret", "report"]:
        if state.get("sources"):
            return "query"
        return "interpret" if str(state.get("context") or "").strip() else "report"

    def after_query(self, state: AnalystState) -> Literal["query", "interpret"]:
        return "query" if state.get("query_error") and state.get("queries", 0) < 2 else "interpret"


def build_analyst(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled analyst flow."""
    steps = AnalystSteps(resources)
    builder = StateGraph(
        AnalystState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("locate", steps.locate)
    builder.add_node("query", steps.query)
    builder.add_node("interpret", steps.interpret)
    builder.add_node("report", steps.report)
    builder.add_edge(START, "locate")
    builder.add_conditional_edges("locate", steps.after_locate)
    builder.add_conditional_edges("query", steps.after_query)
    builder.add_edge("interpret", "report")
    builder.add_edge("report", "__end__")
    return builder.compile(name=name)
