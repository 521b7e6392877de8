"""The ``run_python`` tool: execute code in the sandbox, in the run's workspace."""

from __future__ import annotations

import asyncio

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.sandbox import run_sandboxed


class SandboxUnavailableError(RuntimeError):
    """No isolation is available and ``sandbox.allow_unisolated`` is off: code never runs."""


class RunPythonArgs(BaseModel):
    code: str = Field(
        default="",
        description="Python source to run. Print what you want to see.",
    )
    filename: str | None = Field(
        default=None,
        description=(
            "Optional workspace file (.py). With code: save the code there, then run it. "
            "Without code: run that existing file."
        ),
    )


def run_python_tool(ctx: ToolContext) -> BaseTool:
    """The ``run_python`` tool bound to ``ctx``'s workspace and sandbox limits."""
    limits = ctx.sandbox

    async def run_python(code: str = "", filename: str | None = None) -> str:
        if not code.strip() and not filename:
            raise ToolInputError("give code to run, or the filename of a workspace .py file")
        root = await asyncio.to_thread(ctx.ensure_workspace)
        try:
            result = await run_sandboxed(code, root, limits, filename=filename)
        except (ValueError, FileNotFoundError) as exc:
            raise ToolInputError(str(exc)) from exc
        if result.refused:
            # Fails the call (status "error"): nothing ran, and retrying will not help.
            raise SandboxUnavailableError(str(result.reason))
        return result.to_text(limits.max_output_chars)

    return make_tool(
        name="run_python",
        description=(
            "Run Python 3.11 code in a sandbox whose working directory is the run's "
            "workspace (files from write_file are there and importable). Returns exit "
            f"code, the isolation layers that were active, stdout and stderr. Limits: {limits.timeout_s:g}s, {limits.memory_mb} MB, "
            "no network, no subprocesses, no files outside the workspace. Installed "
            "packages can be imported. To run tests: code='import pytest; "
            'raise SystemExit(pytest.main(["-q", "test_x.py"]))\'.'
        ),
        args_schema=RunPythonArgs,
        coroutine=run_python,
        traits=ToolTraits(mutates=True, reads_workspace=True),
    )
