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
from typing import Any, Literal

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, ValidationError

Risk = Literal["low", "high"]


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
    risk: Risk = "low",
) -> StructuredTool:
    """Build a StructuredTool around ``coroutine`` with model-friendly error handling.

    ``metadata["risk"]`` is ``"high"`` for tools with side effects outside the workspace;
    the agent layer asks a human before running those.
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
        metadata={"risk": risk},
        handle_tool_error=True,
        handle_validation_error=_validation_message(name),
    )
