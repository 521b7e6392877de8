"""query_data: read-only SQL over workspace SQLite and CSV files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import tools.data
from tools.context import ToolContext
from tools.data import query_data_tool, table_name_for


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "sales.csv").write_text(
        "region,product,units,price\n"
        "north,widget,10,2.5\n"
        "south,widget,4,2.5\n"
        "north,gadget,3,10\n"
        "west,,7,1.25\n"
    )
    conn = sqlite3.connect(ws / "shop.db")
    conn.executescript(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);"
        "INSERT INTO items(name, qty) VALUES ('a', 1), ('b', 2), ('c', 3);"
        "CREATE TABLE big(n INTEGER);"
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < 200) "
        "INSERT INTO big SELECT n FROM s;"
    )
    conn.commit()
    conn.close()
    return ToolContext(
        workspace=ws, kb_dir=tmp_path, kb_index=tmp_path / "i.sqlite", customer_db=tmp_path / "c"
    )


async def q(ctx: ToolContext, sql: str, source: str) -> str:
    return await query_data_tool(ctx).ainvoke({"sql": sql, "source": source})


async def test_csv_query_with_types(ctx: ToolContext) -> None:
    out = await q(
        ctx,
        "SELECT region, SUM(units * price) AS revenue FROM sales GROUP BY region ORDER BY revenue DESC",
        "sales.csv",
    )
    assert out.splitlines() == [
        "sales.csv: CSV loaded as table sales. 3 row(s).",
        "region | revenue",
        "north | 55",
        "south | 10",
        "west | 8.75",
    ]
    out = await q(ctx, "select count(*) from sales where product is null", "sales.csv")
    assert out.splitlines()[-1] == "1"


async def test_sqlite_query(ctx: ToolContext) -> None:
    out = await q(ctx, "SELECT name, qty FROM items WHERE qty > 1 ORDER BY qty;", "shop.db")
    assert out.splitlines()[1:] == ["name | qty", "b | 2", "c | 3"]
    out = await q(ctx, "WITH t AS (SELECT qty FROM items) SELECT max(qty) FROM t", "shop.db")
    assert out.splitlines()[-1] == "3"


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM items",
        "DROP TABLE items",
        "INSERT INTO items(name, qty) VALUES ('x', 9)",
        "UPDATE items SET qty = 0",
        "WITH t AS (SELECT 1) DELETE FROM items",
        "WITH t AS (SELECT 1) INSERT INTO items(name, qty) SELECT 'x', 1 FROM t",
        "SELECT 1; DROP TABLE items",
        "SELECT 1; DELETE FROM items",
        "ATTACH DATABASE 'other.db' AS o",
        "PRAGMA query_only = OFF",
        "VACUUM INTO 'copy.db'",
        "/* hi */ DELETE FROM items",
        "CREATE TABLE t(x)",
    ],
)
async def test_writes_rejected(ctx: ToolContext, sql: str) -> None:
    out = await q(ctx, sql, "shop.db")
    assert out.startswith("Error:"), out
    conn = sqlite3.connect(ctx.workspace / "shop.db")
    assert conn.execute("SELECT count(*), sum(qty) FROM items").fetchone() == (3, 6)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == [
        "items",
        "big",
    ]
    conn.close()
    assert not (ctx.workspace / "copy.db").exists() and not (ctx.workspace / "other.db").exists()


async def test_write_rejected_on_csv_too(ctx: ToolContext) -> None:
    assert (await q(ctx, "WITH x AS (SELECT 1) DELETE FROM sales", "sales.csv")).startswith(
        "Error:"
    )


async def test_row_cap(ctx: ToolContext) -> None:
    out = await q(ctx, "SELECT n FROM big", "shop.db")
    lines = out.splitlines()
    assert lines[0] == "shop.db: SQLite database (read-only). 50+ row(s)."
    assert len(lines) == 53 and "more rows not shown" in lines[-1]


async def test_errors_are_helpful(ctx: ToolContext) -> None:
    out = await q(ctx, "SELECT nope FROM items", "shop.db")
    assert "no such column: nope" in out and "items(id, name, qty)" in out
    assert "no file 'missing.db'" in await q(ctx, "SELECT 1", "missing.db")
    assert "'..'" in await q(ctx, "SELECT 1", "../ws/shop.db")
    assert "absolute" in await q(ctx, "SELECT 1", str(ctx.workspace / "shop.db"))
    (ctx.workspace / "notes.txt").write_text("x")
    assert "not a .csv or SQLite" in await q(ctx, "SELECT 1", "notes.txt")
    assert "incomplete" in await q(ctx, "SELECT 'oops", "shop.db")


async def test_long_query_is_stopped(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.data, "QUERY_TIMEOUT_S", 0.2)
    sql = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s) SELECT max(n) FROM s"
    assert "longer than 0.2s" in await q(ctx, sql, "shop.db")


def test_table_names() -> None:
    assert table_name_for(Path("Sales Q1-2024.csv")) == "sales_q1_2024"
    assert table_name_for(Path("2024.csv")) == "t_2024"


def _peak_mb_after(sql: str, source_dir: Path) -> tuple[str, float]:
    """Run one query in a fresh interpreter; its output and the process's peak RSS in MB."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tools.data import run_query\n"
        "try:\n"
        "    out = run_query(Path(sys.argv[1]), sys.argv[2], 'shop.db')\n"
        "except Exception as exc:\n"
        "    out = f'{type(exc).__name__}: {exc}'\n"
        # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(json.dumps([out, int(hwm.split()[1]) / 1024]))\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", script, str(source_dir), sql], cwd=root,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    out, peak = json.loads(proc.stdout)
    return out, peak


def test_query_memory_is_bounded(ctx: ToolContext) -> None:
    """A query cannot make the process allocate what it asks for: one value is at most
    MAX_VALUE_BYTES, the values fetched at most MAX_RESULT_BYTES, with a message saying so."""
    out, peak = _peak_mb_after("SELECT length(randomblob(900000000))", ctx.workspace)
    assert out.startswith("ToolInputError: a value is larger than 1048576 bytes"), out
    assert peak < 150, peak  # ~900 MB before
    wide = "SELECT " + ", ".join(["randomblob(1000000)"] * 100)
    out, peak = _peak_mb_after(wide, ctx.workspace)
    assert "more than 64 columns" in out and peak < 150, (out, peak)
    many = ("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 45) "
            "SELECT i, randomblob(1000000) FROM r")
    out, peak = _peak_mb_after(many, ctx.workspace)
    assert out.splitlines()[-1].startswith("(stopped: the values fetched reached 4194304 bytes")
    assert len(out.splitlines()) == 2 + 4 + 1 and peak < 150, (out, peak)
