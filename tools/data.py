"""``query_data``: read-only SQL over SQLite databases and CSV files in the workspace.

Read-only is enforced three ways, so no single check has to be perfect: only one
statement starting with SELECT or WITH is accepted; SQLite files are opened with the
``mode=ro`` URI and ``PRAGMA query_only``; and an authorizer refuses every action except
reading and calling functions (so ``WITH … DELETE``, ATTACH or PRAGMA writes fail too).
A CSV file is loaded into an in-memory table named after the file. Long queries are
interrupted and results are capped in rows and characters.
"""

from __future__ import annotations

import asyncio
import csv
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.paths import resolve_in_workspace

MAX_ROWS = 50
MAX_CELL_CHARS = 80
MAX_OUTPUT_CHARS = 6000
MAX_CSV_BYTES = 20 * 1024 * 1024
QUERY_TIMEOUT_S = 5.0
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_COMMENT = re.compile(r"(--[^\n]*\n?)|(/\*.*?\*/)", re.S)
_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}


def check_select(sql: str) -> str:
    """Return ``sql`` without trailing semicolons if it is one SELECT/WITH statement."""
    stripped = sql.strip().rstrip(";").strip()
    if not stripped:
        raise ToolInputError("sql is empty")
    head = _COMMENT.sub(" ", stripped).lstrip()
    first = head.split(None, 1)[0].upper() if head else ""
    if first not in ("SELECT", "WITH"):
        raise ToolInputError(
            f"only read-only SELECT (or WITH … SELECT) queries are allowed, not {first or 'this'}"
        )
    if not sqlite3.complete_statement(stripped + ";"):
        raise ToolInputError("the SQL statement is incomplete (unbalanced quotes or parentheses?)")
    return stripped


def _authorizer(action: int, *_: object) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def table_name_for(path: Path) -> str:
    """SQL table name of a CSV file: its stem, non-word characters replaced by '_'."""
    name = re.sub(r"\W+", "_", path.stem).strip("_").lower() or "data"
    return f"t_{name}" if name[0].isdigit() else name


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for i, raw in enumerate(header):
        base = re.sub(r"\s+", "_", raw.strip()) or f"col{i + 1}"
        name, n = base, 2
        while name.lower() in (x.lower() for x in names):
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _convert(value: str) -> object:
    """CSV text -> int, float or str, so numeric comparisons and sums work."""
    v = value.strip()
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return value


def _load_csv(path: Path) -> tuple[sqlite3.Connection, str]:
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise ToolInputError(f"{path.name} is {size} bytes; the CSV limit is {MAX_CSV_BYTES}")
    conn = sqlite3.connect(":memory:")
    table = table_name_for(path)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(fh, dialect)
        header = next(reader, None)
        if not header:
            raise ToolInputError(f"{path.name} is empty")
        cols = _column_names(header)
        quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
        conn.execute(f'CREATE TABLE "{table}" ({quoted})')
        marks = ", ".join("?" for _ in cols)
        rows = (
            [_convert(v) for v in (row + [""] * len(cols))[: len(cols)]] for row in reader if row
        )
        conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
    conn.commit()
    return conn, table


def _open(root: Path, source: str) -> tuple[sqlite3.Connection, str]:
    path = resolve_in_workspace(root, source)
    if not path.is_file():
        raise ToolInputError(f"no file {source!r} in the workspace; use list_files")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        conn, table = _load_csv(path)
        return conn, f"CSV loaded as table {table}"
    if suffix in SQLITE_SUFFIXES:
        uri = f"file:{quote(str(path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True)
        return conn, "SQLite database (read-only)"
    raise ToolInputError(f"{source!r} is not a .csv or SQLite ({', '.join(SQLITE_SUFFIXES)}) file")


def _schema(conn: sqlite3.Connection) -> str:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table','view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    parts = []
    for t in tables[:20]:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')]
        parts.append(f"{t}({', '.join(cols)})")
    return "; ".join(parts)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def run_query(root: Path, sql: str, source: str, max_rows: int = MAX_ROWS) -> str:
    """Run a read-only query against a workspace file; return a compact table (blocking)."""
    statement = check_select(sql)
    conn, kind = _open(root, source)
    try:
        schema = _schema(conn)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")  # a crafted file's views can't run functions
        conn.set_authorizer(_authorizer)
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        # Returning non-zero from the progress handler aborts the running statement.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cur = conn.execute(statement)
            rows = cur.fetchmany(max_rows + 1)
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if "interrupted" in msg:
                msg = f"query took longer than {QUERY_TIMEOUT_S:g}s and was stopped"
            elif "not authorized" in msg or "readonly" in msg:
                msg = "the query tries to change data or settings; only reading is allowed"
            raise ToolInputError(f"{msg}. Tables: {schema}") from exc
        except (sqlite3.Error, sqlite3.Warning) as exc:  # 3.11: multi-statement is a Warning
            raise ToolInputError(f"{exc}. Tables: {schema}") from exc
        cols = [d[0] for d in cur.description or []]
    finally:
        conn.close()
    more = len(rows) > max_rows
    rows = rows[:max_rows]
    lines = [f"{source}: {kind}. {len(rows)}{'+' if more else ''} row(s)."]
    lines.append(" | ".join(cols))
    for row in rows:
        line = " | ".join(_cell(v) for v in row)
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_OUTPUT_CHARS:
            more = True
            break
        lines.append(line)
    if more:
        lines.append(f"(more rows not shown; add LIMIT/aggregates, max {max_rows} rows)")
    return "\n".join(lines)


class QueryDataArgs(BaseModel):
    sql: str = Field(description="One read-only SELECT (or WITH … SELECT) statement.")
    source: str = Field(
        description=(
            "Workspace file to query: a SQLite database (.sqlite/.db) or a .csv file "
            "(a CSV becomes a table named after the file, e.g. sales.csv -> sales)."
        )
    )


def query_data_tool(ctx: ToolContext) -> BaseTool:
    """The ``query_data`` tool over files in ``ctx``'s workspace."""

    async def query_data(sql: str, source: str) -> str:
        root = await asyncio.to_thread(ctx.ensure_workspace)
        return await asyncio.to_thread(run_query, root, sql, source)

    return make_tool(
        name="query_data",
        description=(
            "Run a read-only SQL query (SQLite dialect) on a SQLite database or CSV file in "
            f"the workspace. Returns at most {MAX_ROWS} rows; errors list the tables and "
            "columns."
        ),
        args_schema=QueryDataArgs,
        coroutine=query_data,
        traits=ToolTraits(reads_workspace=True),
    )
