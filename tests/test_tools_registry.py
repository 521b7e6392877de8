"""Registry and context: names, construction, risk flags, and no blocking I/O in the loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

from core.settings import Settings
from tools.context import SAMPLE_KB_DIR, ToolContext
from tools.registry import TOOL_NAMES, UnknownToolError, build_tools, is_high_risk
from tools.sandbox import SandboxLimits

EXPECTED = {
    "search_knowledge_base",
    "run_python",
    "read_file",
    "write_file",
    "list_files",
    "query_data",
    "lookup_customer",
    "lookup_order",
    "lookup_ticket",
    "issue_refund",
    "update_ticket",
}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext.from_settings(Settings(data_dir=tmp_path / "data"), "run-1")


def test_from_settings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ctx = ToolContext.from_settings(Settings(data_dir=data), "run-1")
    assert ctx.workspace == data / "workspaces" / "run-1"
    assert ctx.kb_dir == SAMPLE_KB_DIR and ctx.kb_index == data / "kb_index.sqlite"
    assert ctx.customer_db == data / "customer_service.sqlite" and ctx.seed_customer_db
    assert ctx.sandbox == SandboxLimits() and ctx.sandbox.timeout_s == 10
    assert not ctx.workspace.exists()  # no I/O at construction
    assert ctx.ensure_workspace() == ctx.workspace.resolve() and ctx.workspace.is_dir()
    custom = ToolContext.from_settings(
        Settings(data_dir=data, knowledge_base_dir=tmp_path / "kb", customer_db=tmp_path / "c.db"),
        "r2",
    )
    assert custom.kb_dir == tmp_path / "kb" and custom.customer_db == tmp_path / "c.db"
    assert not custom.seed_customer_db
    for bad in ("", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValueError, match="run_id"):
            ToolContext.from_settings(Settings(data_dir=data), bad)


def test_build_tools(ctx: ToolContext) -> None:
    assert set(TOOL_NAMES) == EXPECTED
    tools = build_tools(TOOL_NAMES, ctx)
    assert [t.name for t in tools] == list(TOOL_NAMES)
    for tool in tools:
        assert tool.description and tool.args_schema is not None
        assert tool.coroutine is not None  # type: ignore[attr-defined]
    assert {t.name for t in tools if is_high_risk(t)} == {"issue_refund", "update_ticket"}
    assert [t.name for t in build_tools(["read_file", "read_file"], ctx)] == ["read_file"]


def test_unknown_tool(ctx: ToolContext) -> None:
    with pytest.raises(UnknownToolError) as err:
        build_tools(["read_file", "send_email"], ctx)
    assert "unknown tool 'send_email'" in str(err.value) and "search_knowledge_base" in str(
        err.value
    )
    assert err.value.name == "send_email" and isinstance(err.value, ValueError)


async def test_no_blocking_calls_in_the_event_loop(ctx: ToolContext) -> None:
    """The LangGraph dev server raises BlockingError for blocking I/O in async code."""
    tools = {t.name: t for t in build_tools(TOOL_NAMES, ctx)}
    await tools["write_file"].ainvoke({"path": "warmup.txt", "content": "x"})
    ws = ctx.ensure_workspace()
    conn = sqlite3.connect(ws / "d.db")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("search_knowledge_base", {"query": "refund window"}),
        ("write_file", {"path": "a.py", "content": "print('hi')"}),
        ("read_file", {"path": "a.py"}),
        ("list_files", {}),
        ("query_data", {"sql": "SELECT count(*) FROM t", "source": "d.db"}),
        ("run_python", {"code": "print(1 + 1)"}),
        ("lookup_customer", {"customer_id": "C001"}),
        ("lookup_order", {"order_id": "O1001"}),
        ("lookup_ticket", {"ticket_id": "T501"}),
        ("issue_refund", {"order_id": "O1001", "amount": 1, "reason": "test"}),
        ("update_ticket", {"ticket_id": "T501", "status": "pending", "note": "test"}),
        ("read_file", {"path": "../escape"}),
    ]
    with blockbuster_ctx():
        for name, args in calls:
            out = await tools[name].ainvoke(args)
            assert "BlockingError" not in out, (name, out)
            assert not out.startswith("Error:") or name == "read_file", (name, out)
