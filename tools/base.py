"""Shared construction of tools: async-first StructuredTools whose errors reach the model.

Every tool here is built by :func:`make_tool`. The coroutine does the work (file and
SQLite I/O go through ``asyncio.to_thread``); any exception it raises becomes a
``ToolException`` whose text is returned to the model as the tool result (status
"error"), so a bad argument or a missing record never crashes a run.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, ValidationError

Risk = Literal["low", "high"]


@dataclass(frozen=True)
class ToolTraits:
    """What running a tool does, declared where the tool is defined; the agent layer (approval,
    repeats, artifacts), the result cache and escalation read these instead of name lists."""

    mutates: bool = False
    """It changes what later calls see (files, refunds, tickets): a repeated call may be
    legitimate, and a result that depends on it is never cached."""
    needs_approval: bool = False
    """Its effects reach outside the workspace: a human approves each call first."""
    reads_workspace: bool = False
    """It reads the run's workspace (a cached result depends on the files there)."""
    reads_knowledge_base: bool = False
    """It reads the knowledge base (a cached result depends on the documents)."""
    writes_file: str | None = None
    """The argument naming the workspace file a successful call writes (an artifact)."""
    for_customer: bool = False
    """It acts on a customer's records: it runs only for the customer the request is about
    (the agent layer injects ``acting_for``)."""

    @property
    def risk(self) -> Risk:
        return "high" if self.needs_approval else "low"


READ_ONLY = ToolTraits()


def traits_of(tool: Any) -> ToolTraits:
    """A tool's declared traits; a tool built elsewhere (an MCP server's) gets them from its
    ``risk`` (high: it needs approval and may change anything)."""
    meta = getattr(tool, "metadata", None) or {}
    declared = meta.get("traits")
    if isinstance(declared, dict):
        return ToolTraits(**declared)
    high = meta.get("risk") == "high"
    return ToolTraits(mutates=high, needs_approval=high)


class ToolInputError(ValueError):
    """A problem with the model's arguments or the data it asked for; the text is shown."""


def _validation_message(name: str) -> Callable[[Any], str]:
    def render(err: Any) -> str:
        if isinstance(err, ValidationError):
            parts = []
            for e in err.errors():
                loc = ".".join(str(p) for p in e["loc"]) or "arguments"
                parts.append(f"{loc}: {e['msg']}")
            return f"Error: invalid arguments for {name}: " + "; ".join(parts)
        return f"Error: invalid arguments for {name}: {err}"

    return render


def make_tool(
    *,
    name: str,
    description: str,
    args_schema: type[BaseModel],
    coroutine: Callable[..., Awaitable[str]],
    traits: ToolTraits = READ_ONLY,
) -> StructuredTool:
    """Build a StructuredTool around ``coroutine`` with model-friendly error handling.

    ``traits`` declare what the tool does (``metadata["traits"]``); ``metadata["risk"]`` is
    ``"high"`` for tools that need approval (the key MCP tools carry too).
    """

    @functools.wraps(coroutine)
    async def guarded(**kwargs: Any) -> str:
        try:
            return await coroutine(**kwargs)
        except ToolException:
            raise
        except ToolInputError as exc:
            raise ToolException(f"Error: {exc}") from exc
        except Exception as exc:  # any other failure is reported, not raised into the graph
            raise ToolException(f"Error: {name} failed: {type(exc).__name__}: {exc}") from exc

    def sync(**kwargs: Any) -> str:
        # Sync entry point for scripts and tests; graphs call the async one.
        return asyncio.run(guarded(**kwargs))

    return StructuredTool.from_function(
        func=sync,
        coroutine=guarded,
        name=name,
        description=description,
        args_schema=args_schema,
        infer_schema=False,
        metadata={"risk": traits.risk, "traits": asdict(traits)},
        handle_tool_error=True,
        handle_validation_error=_validation_message(name),
    )
