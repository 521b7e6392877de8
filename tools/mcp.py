"""Tools from MCP servers (optional), via langchain-mcp-adapters' MultiServerMCPClient.

``servers`` is ``Settings.mcp_servers``: server name -> langchain-mcp-adapters connection
dict (``{"transport": "stdio", "command": ..., "args": [...]}``, or ``"url"`` for
``streamable_http``/``sse``/``websocket``). Two extra keys are understood and removed
before the dict reaches the client: ``risk`` ("low"/"high", applied to all the server's
tools) and ``prefix`` (true: tool names become ``<server>_<tool>``). Without ``risk``, a
tool whose MCP annotations say ``destructiveHint: true`` is high risk; others are low.

A server that cannot be reached is logged and skipped, so one broken server does not stop
a run. The adapters open a fresh session per tool call, so nothing stays running.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient

log = logging.getLogger(__name__)

_OUR_KEYS = ("risk", "prefix")


def _connection(config: dict[str, Any]) -> dict[str, Any]:
    conn = {k: v for k, v in config.items() if k not in _OUR_KEYS}
    if "transport" not in conn:  # infer the obvious transport
        conn["transport"] = "stdio" if "command" in conn else "streamable_http"
    if conn["transport"] == "stdio":
        conn.setdefault("args", [])
    return conn


def _risk(tool: BaseTool, config: dict[str, Any]) -> str:
    if config.get("risk") in ("low", "high"):
        return str(config["risk"])
    meta = tool.metadata or {}
    if meta.get("readOnlyHint"):
        return "low"
    return "high" if meta.get("destructiveHint") else "low"


async def load_mcp_tools(servers: dict[str, dict[str, Any]]) -> list[BaseTool]:
    """Load the tools of every configured MCP server; ``{}`` -> ``[]``."""
    tools: list[BaseTool] = []
    for name, config in (servers or {}).items():
        client = MultiServerMCPClient(
            {name: _connection(config)},  # type: ignore[dict-item]
            tool_name_prefix=bool(config.get("prefix", False)),
        )
        try:
            loaded = await client.get_tools(server_name=name)
        except Exception as exc:  # an unreachable server must not break the run
            log.warning("MCP server %r skipped: %s: %s", name, type(exc).__name__, exc)
            continue
        for tool in loaded:
            tool.metadata = {
                **(tool.metadata or {}),
                "risk": _risk(tool, config),
                "mcp_server": name,
            }
            tool.handle_tool_error = True
            tools.append(tool)
    return tools
