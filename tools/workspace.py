"""Workspace files: read_file, write_file, list_files, confined to the run's directory.

Paths are relative to the workspace. Absolute paths and ``..`` are refused outright, and
every path is resolved (following symlinks) and must stay inside the workspace, so a
symlink planted by sandboxed code cannot lead a tool outside. Final opens use
``O_NOFOLLOW`` so a symlink swapped in after the check is not followed either.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.paths import WorkspacePathError, resolve_in_workspace

__all__ = [
    "WorkspacePathError",
    "list_files_tool",
    "read_file_tool",
    "resolve_in_workspace",
    "write_file_tool",
]

MAX_READ_CHARS = 8000
MAX_READ_FILE_BYTES = 20 * 1024 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 200
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".tmp", ".mypy_cache", ".ruff_cache"}


def _read(root: Path, rel: str, start_line: int, max_chars: int) -> str:
    path = resolve_in_workspace(root, rel)
    if not path.exists():
        raise ToolInputError(f"no file {rel!r} in the workspace; use list_files to see files")
    if path.is_dir():
        raise ToolInputError(f"{rel!r} is a directory; use list_files")
    size = path.stat().st_size
    if size > MAX_READ_FILE_BYTES:
        raise ToolInputError(f"{rel!r} is {size} bytes; too large to read (use run_python)")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    if b"\x00" in data[:8192]:
        raise ToolInputError(
            f"{rel!r} is a binary file ({size} bytes); use run_python or query_data"
        )
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if start_line > len(lines) and lines:
        raise ToolInputError(f"{rel!r} has only {len(lines)} lines")
    out: list[str] = []
    used = 0
    last = start_line - 1
    for line in lines[start_line - 1 :]:
        if used + len(line) > max_chars and out:
            break
        out.append(line[: max_chars - used])
        used += len(line)
        last += 1
    text = "".join(out)
    if last < len(lines) or start_line > 1:
        more = f"; continue with start_line={last + 1}" if last < len(lines) else ""
        text += f"\n[lines {start_line}-{last} of {len(lines)}{more}]"
    return text or "(empty file)"


def _write(root: Path, rel: str, content: str, append: bool) -> str:
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise ToolInputError(f"content is {len(data)} bytes; the limit is {MAX_WRITE_BYTES}")
    path = resolve_in_workspace(root, rel)
    if path == root or path.is_dir():
        raise ToolInputError(f"{rel!r} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    path = resolve_in_workspace(root, rel)  # re-check: parents may have changed meanwhile
    if append and path.exists() and path.stat().st_size + len(data) > MAX_WRITE_BYTES:
        raise ToolInputError(f"appending would make {rel!r} larger than {MAX_WRITE_BYTES} bytes")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    shown = path.relative_to(root).as_posix()
    return f"{'Appended' if append else 'Wrote'} {len(data)} bytes to {shown}"


def _list(root: Path, rel: str) -> str:
    base = resolve_in_workspace(root, rel) if rel not in ("", ".") else root
    if not base.exists():
        raise ToolInputError(f"no directory {rel!r} in the workspace")
    if not base.is_dir():
        raise ToolInputError(f"{rel!r} is a file; use read_file")
    rows: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            total += 1
            if len(rows) >= MAX_LIST_ENTRIES:
                continue
            full = Path(dirpath, name)
            shown = full.relative_to(root).as_posix()
            if full.is_symlink():
                rows.append(f"{shown} (symlink)")
            else:
                rows.append(f"{shown} ({full.lstat().st_size} bytes)")
    if not rows:
        return "(no files)" if base == root else f"(no files under {rel})"
    if total > len(rows):
        rows.append(f"… {total - len(rows)} more files not shown")
    return "\n".join(rows)


class ReadFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'report.md'.")
    start_line: int = Field(default=1, ge=1, description="First line to return (1-based).")


class WriteFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'src/util.py'.")
    content: str = Field(description="Full text to write (UTF-8).")
    append: bool = Field(default=False, description="Append instead of overwriting.")


class ListFilesArgs(BaseModel):
    path: str = Field(default=".", description="Directory relative to the workspace.")


def read_file_tool(ctx: ToolContext) -> BaseTool:
    """The ``read_file`` tool for ``ctx``'s workspace."""

    async def read_file(path: str, start_line: int = 1) -> str:
        root = await asyncio.to_thread(ctx.ensure_workspace)
        return await asyncio.to_thread(_read, root, path, start_line, MAX_READ_CHARS)

    return make_tool(
        name="read_file",
        description=(
            "Read a text file from the run's workspace. Returns up to "
            f"{MAX_READ_CHARS} characters; for longer files call again with start_line."
        ),
        args_schema=ReadFileArgs,
        coroutine=read_file,
        traits=ToolTraits(reads_workspace=True),
    )


def write_file_tool(ctx: ToolContext) -> BaseTool:
    """The ``write_file`` tool for ``ctx``'s workspace."""

    async def write_file(path: str, content: str, append: bool = False) -> str:
        root = await asyncio.to_thread(ctx.ensure_workspace)
        return await asyncio.to_thread(_write, root, path, content, append)

    return make_tool(
        name="write_file",
        description=(
            "Create or overwrite a text file in the run's workspace (parent folders are "
            "created). Use relative paths like 'analysis/summary.md'. Max 1 MB."
        ),
        args_schema=WriteFileArgs,
        coroutine=write_file,
        traits=ToolTraits(mutates=True, writes_file="path"),
    )


def list_files_tool(ctx: ToolContext) -> BaseTool:
    """The ``list_files`` tool for ``ctx``'s workspace."""

    async def list_files(path: str = ".") -> str:
        root = await asyncio.to_thread(ctx.ensure_workspace)
        return await asyncio.to_thread(_list, root, path)

    return make_tool(
        name="list_files",
        description="List files (with sizes) in the run's workspace, recursively.",
        args_schema=ListFilesArgs,
        coroutine=list_files,
        traits=ToolTraits(reads_workspace=True),
    )
