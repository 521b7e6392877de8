"""Workspace files: read_file, write_file, list_files, confined to the run's directory.

Paths are relative to the workspace. Every file is reached through :mod:`tools.paths`:
walked from a descriptor of the workspace one component at a time, no symlink followed
anywhere on the way, and only regular files opened (a FIFO, socket or device is refused
before anything could block on it), so sandboxed code renaming directories or swapping
links while a tool runs cannot lead it outside. Reads, writes and listings are bounded.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.paths import (
    NotADirectory,
    WorkspacePathError,
    open_dir,
    open_file,
    read_bounded,
    resolve_in_workspace,
    workspace_parts,
    write_all,
)

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
MAX_LIST_SCANNED = 20_000
"""Entries looked at by one listing at most: sandboxed code can make millions."""
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".tmp", ".mypy_cache", ".ruff_cache"}


def _shown(rel: str) -> str:
    return "/".join(workspace_parts(rel))


def _missing(rel: str) -> ToolInputError:
    return ToolInputError(f"no file {rel!r} in the workspace; use list_files to see files")


def _read(root: Path, rel: str, start_line: int, max_chars: int) -> str:
    try:
        with open_file(root, rel) as opened:
            if opened.size > MAX_READ_FILE_BYTES:
                raise ToolInputError(
                    f"{rel!r} is {opened.size} bytes; too large to read (use run_python)")
            data = read_bounded(opened, MAX_READ_FILE_BYTES)
    except FileNotFoundError:
        raise _missing(rel) from None
    if b"\x00" in data[:8192]:
        raise ToolInputError(
            f"{rel!r} is a binary file ({len(data)} bytes); use run_python or query_data"
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
    with open_file(root, rel, write=True) as opened:
        if append:
            size = os.fstat(opened.fd).st_size
            if size + len(data) > MAX_WRITE_BYTES:
                raise ToolInputError(
                    f"appending would make {rel!r} larger than {MAX_WRITE_BYTES} bytes")
            os.lseek(opened.fd, 0, os.SEEK_END)
        else:
            os.ftruncate(opened.fd, 0)
        write_all(opened.fd, data)
    return f"{'Appended' if append else 'Wrote'} {len(data)} bytes to {_shown(rel)}"


def _list(root: Path, rel: str) -> str:
    parts = workspace_parts(rel) if rel not in ("", ".") else ()
    prefix = "/".join(parts)
    rows: list[str] = []
    total = scanned = 0
    try:
        with open_dir(root, rel) as base_fd:
            # fwalk walks by descriptor and never follows a symlink: a rename meanwhile
            # cannot lead it outside.
            walk = os.fwalk(".", dir_fd=base_fd, follow_symlinks=False)
            for dirpath, dirnames, filenames, dir_fd in walk:
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
                for name in sorted(filenames):
                    scanned += 1
                    if scanned > MAX_LIST_SCANNED:
                        break
                    total += 1
                    if len(rows) >= MAX_LIST_ENTRIES:
                        continue
                    inner = os.path.normpath(os.path.join(dirpath, name))
                    shown = f"{prefix}/{inner}" if prefix else inner
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISLNK(st.st_mode):
                        rows.append(f"{shown} (symlink)")
                    elif stat.S_ISREG(st.st_mode):
                        rows.append(f"{shown} ({st.st_size} bytes)")
                    else:
                        rows.append(f"{shown} (not a regular file)")
                if scanned > MAX_LIST_SCANNED:
                    break
    except FileNotFoundError:
        raise ToolInputError(f"no directory {rel!r} in the workspace") from None
    except NotADirectory:
        raise ToolInputError(f"{rel!r} is not a directory; use read_file for a file") from None
    if not rows:
        return "(no files)" if not parts else f"(no files under {rel})"
    if total > len(rows):
        rows.append(f"… {total - len(rows)} more files not shown")
    if scanned > MAX_LIST_SCANNED:
        rows.append(f"… stopped after {MAX_LIST_SCANNED} entries")
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
