"""Tool names -> tool instances bound to a run's :class:`ToolContext`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path

from langchain_core.tools import BaseTool

from tools.base import ToolTraits, traits_of
from tools.context import ToolContext
from tools.customer_service import (
    issue_refund_tool,
    lookup_customer_tool,
    lookup_order_tool,
    lookup_ticket_tool,
    update_ticket_tool,
)
from tools.data import query_data_tool
from tools.knowledge_base import search_knowledge_base_tool
from tools.run_python import run_python_tool
from tools.workspace import list_files_tool, read_file_tool, write_file_tool

_BUILDERS: dict[str, Callable[[ToolContext], BaseTool]] = {
    "search_knowledge_base": search_knowledge_base_tool,
    "run_python": run_python_tool,
    "read_file": read_file_tool,
    "write_file": write_file_tool,
    "list_files": list_files_tool,
    "query_data": query_data_tool,
    "lookup_customer": lookup_customer_tool,
    "lookup_order": lookup_order_tool,
    "lookup_ticket": lookup_ticket_tool,
    "issue_refund": issue_refund_tool,
    "update_ticket": update_ticket_tool,
}

TOOL_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Every built-in tool name."""


class UnknownToolError(ValueError):
    """A tool name that is not built in; the message lists the known names."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tool {name!r}; known tools: {', '.join(TOOL_NAMES)}")
        self.name = name


def build_tools(names: Sequence[str], ctx: ToolContext) -> list[BaseTool]:
    """Instantiate the named tools for ``ctx`` (in the given order, duplicates dropped)."""
    for name in names:
        if name not in _BUILDERS:
            raise UnknownToolError(name)
    return [_BUILDERS[name](ctx) for name in dict.fromkeys(names)]


def is_high_risk(tool: BaseTool) -> bool:
    """Whether running ``tool`` needs human approval (its traits say so)."""
    return traits_of(tool).needs_approval


_NOWHERE = Path("/nonexistent/orchestrator-tool-traits")


@cache
def tool_traits(name: str) -> ToolTraits:
    """The traits a built-in tool declares, by name, without a run: the tool is built on a
    context that is never used (building one does no I/O)."""
    if name not in _BUILDERS:
        raise UnknownToolError(name)
    ctx = ToolContext(workspace=_NOWHERE, kb_dir=_NOWHERE, kb_index=_NOWHERE,
                      customer_db=_NOWHERE, seed_customer_db=False)  # fmt: skip
    return traits_of(_BUILDERS[name](ctx))


def tools_where(names: Iterable[str], trait: str) -> frozenset[str]:
    """The built-in tools among ``names`` whose trait ``trait`` is set (unknown names skipped)."""
    return frozenset(
        n for n in names if n in _BUILDERS and getattr(tool_traits(n), trait)
    )
