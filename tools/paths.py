"""Workspace-relative paths, confined: the one check every file-touching tool uses.

Absolute paths and ``..`` are refused outright, and every path is resolved (following
symlinks) and must stay inside the workspace, so a symlink planted by sandboxed code cannot
lead a tool outside.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from tools.base import ToolInputError


class WorkspacePathError(ToolInputError):
    """A path that is not a safe, workspace-relative path."""


def resolve_in_workspace(workspace: Path, rel: str) -> Path:
    """Resolve ``rel`` inside ``workspace`` or raise :class:`WorkspacePathError` (blocking)."""
    if not rel or not rel.strip():
        raise WorkspacePathError("path is empty; give a path relative to the workspace")
    if "\x00" in rel:
        raise WorkspacePathError("path contains a NUL character")
    pure = PurePosixPath(rel.strip())
    if pure.is_absolute() or rel.startswith("~"):
        raise WorkspacePathError(
            f"{rel!r} is absolute; use a path relative to the workspace, e.g. 'notes/draft.md'"
        )
    if ".." in pure.parts:
        raise WorkspacePathError(f"{rel!r} contains '..'; paths must stay inside the workspace")
    root = workspace.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise WorkspacePathError(f"{rel!r} leads outside the workspace (through a symlink)")
    return target
