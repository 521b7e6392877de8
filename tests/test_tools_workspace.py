"""Workspace file tools: normal use and every way out of the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.context import ToolContext
from tools.workspace import (
    MAX_WRITE_BYTES,
    WorkspacePathError,
    list_files_tool,
    read_file_tool,
    resolve_in_workspace,
    write_file_tool,
)


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path / "kb",
        kb_index=tmp_path / "kb.sqlite",
        customer_db=tmp_path / "cs.sqlite",
    )


async def test_write_read_list_roundtrip(ctx: ToolContext) -> None:
    write, read, ls = write_file_tool(ctx), read_file_tool(ctx), list_files_tool(ctx)
    out = await write.ainvoke({"path": "notes/a.md", "content": "line1\nline2\n"})
    assert out == "Wrote 12 bytes to notes/a.md"
    assert await read.ainvoke({"path": "notes/a.md"}) == "line1\nline2\n"
    await write.ainvoke({"path": "notes/a.md", "content": "line3\n", "append": True})
    assert (ctx.workspace / "notes/a.md").read_text() == "line1\nline2\nline3\n"
    assert await ls.ainvoke({}) == "notes/a.md (18 bytes)"
    assert "notes/a.md" in await ls.ainvoke({"path": "notes"})


async def test_read_paging_and_errors(ctx: ToolContext) -> None:
    ctx.workspace.mkdir(parents=True)
    (ctx.workspace / "big.txt").write_text("".join(f"line {i}\n" for i in range(1, 3001)))
    read = read_file_tool(ctx)
    first = await read.ainvoke({"path": "big.txt"})
    assert first.startswith("line 1\n") and "continue with start_line=" in first
    nxt = int(first.rsplit("start_line=", 1)[1].rstrip("]"))
    second = await read.ainvoke({"path": "big.txt", "start_line": nxt})
    assert second.startswith(f"line {nxt}\n")
    assert "no file 'missing.txt'" in await read.ainvoke({"path": "missing.txt"})
    (ctx.workspace / "bin.dat").write_bytes(b"\x00\x01\x02")
    assert "binary file" in await read.ainvoke({"path": "bin.dat"})


@pytest.mark.parametrize(
    "path, message",
    [
        ("../escape.txt", "'..'"),
        ("notes/../../escape.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/x", "absolute"),
        ("", "empty"),
        ("a\x00b", "NUL"),
    ],
)
async def test_path_escapes_rejected(ctx: ToolContext, path: str, message: str) -> None:
    for tool, args in (
        (read_file_tool(ctx), {"path": path}),
        (write_file_tool(ctx), {"path": path, "content": "x"}),
        (list_files_tool(ctx), {"path": path or "x/.."}),
    ):
        out = await tool.ainvoke(args)
        assert out.startswith("Error:"), out
    out = await read_file_tool(ctx).ainvoke({"path": path})
    assert message in out
    assert not (ctx.workspace.parent / "escape.txt").exists()


async def test_symlink_out_of_workspace_rejected(ctx: ToolContext, tmp_path: Path) -> None:
    ctx.workspace.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, ctx.workspace / "link.txt")
    os.symlink(tmp_path, ctx.workspace / "linkdir")
    out = await read_file_tool(ctx).ainvoke({"path": "link.txt"})
    assert "outside the workspace" in out and "top secret" not in out
    out = await write_file_tool(ctx).ainvoke({"path": "link.txt", "content": "pwned"})
    assert "outside the workspace" in out
    out = await write_file_tool(ctx).ainvoke({"path": "linkdir/new.txt", "content": "pwned"})
    assert "outside the workspace" in out
    assert secret.read_text() == "top secret" and not (tmp_path / "new.txt").exists()
    assert "outside the workspace" in await list_files_tool(ctx).ainvoke({"path": "linkdir"})
    listing = await list_files_tool(ctx).ainvoke({})
    assert "link.txt (symlink)" in listing and "secret" not in listing


async def test_symlink_inside_workspace_allowed(ctx: ToolContext) -> None:
    ctx.workspace.mkdir(parents=True)
    (ctx.workspace / "real.txt").write_text("hello")
    os.symlink("real.txt", ctx.workspace / "alias.txt")
    assert await read_file_tool(ctx).ainvoke({"path": "alias.txt"}) == "hello"


async def test_size_caps(ctx: ToolContext) -> None:
    out = await write_file_tool(ctx).ainvoke(
        {"path": "huge.txt", "content": "x" * (MAX_WRITE_BYTES + 1)}
    )
    assert "limit" in out and not (ctx.workspace / "huge.txt").exists()


def test_resolve_in_workspace(tmp_path: Path) -> None:
    assert resolve_in_workspace(tmp_path, "./a/b.txt") == tmp_path.resolve() / "a/b.txt"
    with pytest.raises(WorkspacePathError):
        resolve_in_workspace(tmp_path, "a/../../b")


async def test_only_regular_files_never_blocking(ctx: ToolContext) -> None:
    """A FIFO (no writer, no reader) would block a plain open forever; a socket cannot be
    opened at all: both are refused at once, by name."""
    import asyncio
    import socket

    ctx.workspace.mkdir(parents=True)
    os.mkfifo(ctx.workspace / "notes.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(ctx.workspace / "s.txt"))
    try:
        for tool, args in (
            (read_file_tool(ctx), {"path": "notes.txt"}),
            (write_file_tool(ctx), {"path": "notes.txt", "content": "x"}),
            (write_file_tool(ctx), {"path": "notes.txt", "content": "x", "append": True}),
        ):
            out = await asyncio.wait_for(tool.ainvoke(args), 5)
            assert out == ("Error: 'notes.txt' is a FIFO (named pipe); only regular files are "
                           "read or written")
        out = await asyncio.wait_for(read_file_tool(ctx).ainvoke({"path": "s.txt"}), 5)
        assert "is a socket" in out
        assert "is a directory" in await read_file_tool(ctx).ainvoke({"path": "."})
        listing = await list_files_tool(ctx).ainvoke({})
        assert "notes.txt (not a regular file)" in listing
    finally:
        sock.close()


async def test_hard_link_not_written(ctx: ToolContext, tmp_path: Path) -> None:
    ctx.workspace.mkdir(parents=True)
    other = tmp_path / "other.txt"
    other.write_text("keep")
    os.link(other, ctx.workspace / "h.txt")
    out = await write_file_tool(ctx).ainvoke({"path": "h.txt", "content": "pwned"})
    assert "hard links" in out and other.read_text() == "keep"


async def test_relative_links_walked_inside_only(ctx: ToolContext, tmp_path: Path) -> None:
    (ctx.workspace / "sub").mkdir(parents=True)
    (ctx.workspace / "sub/real.txt").write_text("inner")
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink("sub", ctx.workspace / "alias")
    os.symlink("../real.txt", ctx.workspace / "sub/up")  # the workspace's real.txt: none
    os.symlink("../../secret.txt", ctx.workspace / "sub/out")
    read = read_file_tool(ctx)
    assert await read.ainvoke({"path": "alias/real.txt"}) == "inner"
    assert "no file" in await read.ainvoke({"path": "sub/up"})
    out = await read.ainvoke({"path": "sub/out"})
    assert "outside the workspace" in out and "top secret" not in out
    await write_file_tool(ctx).ainvoke({"path": "alias/new.txt", "content": "n"})
    assert (ctx.workspace / "sub/new.txt").read_text() == "n"
