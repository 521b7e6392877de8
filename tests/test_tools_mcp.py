"""MCP tools through langchain-mcp-adapters, against a tiny local stdio server."""

from __future__ import annotations

import sys
from pathlib import Path

from tools.mcp import load_mcp_tools
from tools.registry import is_high_risk

SERVER = Path(__file__).parent / "fixtures" / "mcp_add_server.py"


async def test_empty_config() -> None:
    assert await load_mcp_tools({}) == []


async def test_stdio_server_tools() -> None:
    tools = await load_mcp_tools(
        {"math": {"transport": "stdio", "command": sys.executable, "args": [str(SERVER)]}}
    )
    assert [t.name for t in tools] == ["add"]
    add = tools[0]
    assert "Add two integers" in add.description
    assert not is_high_risk(add) and add.metadata and add.metadata["mcp_server"] == "math"
    result = await add.ainvoke({"a": 2, "b": 3})
    assert "5" in str(result)


async def test_risk_prefix_and_inferred_transport() -> None:
    tools = await load_mcp_tools(
        {"calc": {"command": sys.executable, "args": [str(SERVER)], "risk": "high", "prefix": True}}
    )
    assert [t.name for t in tools] == ["calc_add"] and is_high_risk(tools[0])


async def test_broken_server_is_skipped(tmp_path: Path) -> None:
    tools = await load_mcp_tools(
        {
            "broken": {"transport": "stdio", "command": str(tmp_path / "missing"), "args": []},
            "math": {"transport": "stdio", "command": sys.executable, "args": [str(SERVER)]},
        }
    )
    assert [t.name for t in tools] == ["add"]
