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
