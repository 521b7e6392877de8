"""``query_data``: read-only SQL over SQLite databases and CSV files in the workspace.

Read-only is enforced three ways, so no single check has to be perfect: only one
statement starting with SELECT or WITH is accepted; SQLite files are opened with the
``mode=ro`` URI and ``PRAGMA query_only``; and an authorizer refuses every action except
reading and calling functions (so ``WITH … DELETE``, ATTACH or PRAGMA writes fail too).
A CSV file is loaded into an in-memory table named after the file; a SQLite file is read
(bounded, through :func:`tools.paths.open_file`, so sandboxed code swapping links cannot
point it elsewhere) into an in-memory copy, so nothing a query does reaches the file.

Memory is bounded, so a query cannot make the process allocate what it likes
(``randomblob(900000000)``): a value is at most ``MAX_VALUE_BYTES`` (SQLite's per-connection
``SQLITE_LIMIT_LENGTH``), a row at most ``MAX_COLUMNS`` values, the rows fetched at most
``MAX_RESULT_BYTES`` in all, and SQLite's heap in this process at most ``SQLITE_HEAP_LIMIT``
(``PRAGMA hard_heap_limit``, process-wide: a backstop, never raised above a lower limit
set elsewhere). Long queries are interrupted; output is capped in rows and characters.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sqlite3
import time
from pathlib import Path

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.paths import open_file, read_bounded, workspace_parts

MAX_ROWS = 50
MAX_CELL_CHARS = 80
MAX_OUTPUT_CHARS = 6000
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_SQLITE_BYTES = 64 * 1024 * 1024
MAX_VALUE_BYTES = 1024 * 1024
"""The largest string or blob a query may build or read (SQLITE_LIMIT_LENGTH)."""
MAX_COLUMNS = 64
"""The most columns a query's result may have (SQLITE_LIMIT_COLUMN, set once the file's
schema is read, so wider tables still load)."""
MAX_RESULT_BYTES = 4 * 1024 * 1024
"""The most bytes of values fetched from one query; more is refused, not truncated."""
SQLITE_HEAP_LIMIT = 256 * 1024 * 1024
"""SQLite's hard heap limit for this process (see the module docstring)."""
_SQLITE_MAGIC = b"SQLite format 3\x00"
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


def _load_csv(data: bytes, name: str) -> tuple[sqlite3.Connection, str]:
    conn = sqlite3.connect(":memory:")
    table = table_name_for(Path(name))
    fh = io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")
    sample = fh.read(4096)
    fh.seek(0)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(fh, dialect)
    header = next(reader, None)
    if not header:
        raise ToolInputError(f"{name} is empty")
    cols = _column_names(header)
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
    conn.execute(f'CREATE TABLE "{table}" ({quoted})')
    marks = ", ".join("?" for _ in cols)
    rows = ([_convert(v) for v in (row + [""] * len(cols))[: len(cols)]] for row in reader if row)
    conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
    conn.commit()
    return conn, table


def _load_sqlite(data: bytes, source: str) -> sqlite3.Connection:
    """An in-memory copy of a SQLite file's bytes (a WAL-mode file read as a rollback one:
    the in-memory database has no log)."""
    if not data.startswith(_SQLITE_MAGIC):
        raise ToolInputError(f"{source!r} is not a SQLite database")
    if len(data) > 19 and data[18:20] == b"\x02\x02":
        data = data[:18] + b"\x01\x01" + data[20:]
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
    except sqlite3.Error as exc:
        conn.close()
        raise ToolInputError(f"{source!r} is not a readable SQLite database: {exc}") from None
    return conn


def _open(root: Path, source: str) -> tuple[sqlite3.Connection, str]:
    suffix = Path(workspace_parts(source)[-1] if workspace_parts(source) else "").suffix.lower()
    if suffix not in (".csv", *SQLITE_SUFFIXES):
        raise ToolInputError(
            f"{source!r} is not a .csv or SQLite ({', '.join(SQLITE_SUFFIXES)}) file")
    limit = MAX_CSV_BYTES if suffix == ".csv" else MAX_SQLITE_BYTES
    try:
        with open_file(root, source) as opened:
            if opened.size > limit:
                raise ToolInputError(f"{source!r} is {opened.size} bytes; the limit for a "
                                     f"{'CSV' if suffix == '.csv' else 'SQLite'} file is {limit}")
            data = read_bounded(opened, limit)
    except FileNotFoundError:
        raise ToolInputError(f"no file {source!r} in the workspace; use list_files") from None
    if suffix == ".csv":
        conn, table = _load_csv(data, workspace_parts(source)[-1])
        return conn, f"CSV loaded as table {table}"
    return _load_sqlite(data, source), "SQLite database (read-only)"


def _bound(conn: sqlite3.Connection) -> None:
    """The memory limits of the module docstring, on ``conn`` (and SQLite's heap)."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, MAX_COLUMNS)
    current = conn.execute("PRAGMA hard_heap_limit").fetchone()[0]
    if not current or current > SQLITE_HEAP_LIMIT:
        conn.execute(f"PRAGMA hard_heap_limit = {SQLITE_HEAP_LIMIT}")
    # The page cache also bounds how much a sort keeps in memory before it spills.
    conn.execute("PRAGMA cache_size = -8192")


def _too_big(exc: BaseException) -> str | None:
    msg = str(exc)
    if "too big" in msg:
        return (f"a value is larger than {MAX_VALUE_BYTES} bytes, the limit of this tool; "
                "select length(), substr() or an aggregate instead")
    if "too many columns" in msg:
        return f"the result has more than {MAX_COLUMNS} columns; select fewer"
    if "out of memory" in msg:
        return (f"the query needs more than this tool's {SQLITE_HEAP_LIMIT // (1 << 20)} MB "
                "of memory; add LIMIT, WHERE or aggregates")
    return None


def _fetch(cur: sqlite3.Cursor, max_rows: int) -> tuple[list[tuple[object, ...]], bool]:
    """Up to ``max_rows + 1`` rows, and whether fetching stopped early because their values
    reached ``MAX_RESULT_BYTES``."""
    rows: list[tuple[object, ...]] = []
    used = 0
    while len(rows) <= max_rows:
        row = cur.fetchone()
        if row is None:
            break
        used += sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)
        if used > MAX_RESULT_BYTES:
            return rows, True
        rows.append(row)
    return rows, False


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
        _bound(conn)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")  # a crafted file's views can't run functions
        conn.set_authorizer(_authorizer)
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        # Returning non-zero from the progress handler aborts the running statement.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cur = conn.execute(statement)
            rows, cut = _fetch(cur, max_rows)
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if (limit := _too_big(exc)) is not None:
                msg = limit
            elif "interrupted" in msg:
                msg = f"query took longer than {QUERY_TIMEOUT_S:g}s and was stopped"
            elif "not authorized" in msg or "readonly" in msg:
                msg = "the query tries to change data or settings; only reading is allowed"
            raise ToolInputError(f"{msg}. Tables: {schema}") from exc
        except (sqlite3.Error, sqlite3.Warning) as exc:  # 3.11: multi-statement is a Warning
            raise ToolInputError(f"{_too_big(exc) or exc}. Tables: {schema}") from exc
        cols = [d[0] for d in cur.description or []]
    finally:
        conn.close()
    more = len(rows) > max_rows or cut
    rows = rows[:max_rows]
    lines = [f"{source}: {kind}. {len(rows)}{'+' if more else ''} row(s)."]
    lines.append(" | ".join(cols))
    for row in rows:
        line = " | ".join(_cell(v) for v in row)
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_OUTPUT_CHARS:
            more = True
            break
        lines.append(line)
    if cut:
        lines.append(f"(stopped: the values fetched reached {MAX_RESULT_BYTES} bytes, this "
                     "tool's limit; select fewer or shorter columns, or aggregates)")
    elif more:
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
