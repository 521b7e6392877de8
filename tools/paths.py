"""Workspace-relative paths, confined: the one way every file-touching tool reaches a file.

Sandboxed code shares the workspace and may rename, replace or re-link anything in it while
a tool works, so a path is never checked and then opened again by name. It is walked one
component at a time from a descriptor of the workspace, each directory opened relative to
the one before with ``O_NOFOLLOW``, so a rename between two steps can only move the walk to
another place *inside* the workspace. The kernel never follows a symlink for us: a link is
read and its target walked the same way, only while it stays inside (an absolute target,
or ``..`` above the workspace, is refused; ``..`` pops the directories walked). Only
regular files are opened: the last component is ``lstat``-ed through its directory's
descriptor and opened non-blocking, then checked again on the open descriptor, so a FIFO,
socket or device never blocks a tool.

Absolute paths and ``..`` are refused outright.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tools.base import ToolInputError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class WorkspacePathError(ToolInputError):
    """A path that is not a safe, workspace-relative path."""


class NotADirectory(WorkspacePathError):
    """A component of the path that must be a directory is a file (or something else)."""


class NotARegularFile(ToolInputError):
    """The path names a FIFO, socket, device or directory where a regular file is needed."""


def workspace_parts(rel: str) -> tuple[str, ...]:
    """The components of ``rel`` (``.`` dropped); ``WorkspacePathError`` if it is not a
    relative path that stays inside the workspace by its spelling."""
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
    return tuple(p for p in pure.parts if p != ".")


def resolve_in_workspace(workspace: Path, rel: str) -> Path:
    """Resolve ``rel`` inside ``workspace`` or raise :class:`WorkspacePathError` (blocking).

    For naming and messages only: the answer may be stale by the time it is used, so files
    are opened with :func:`open_file` / :func:`open_dir`, never through this path."""
    pure = PurePosixPath(".", *workspace_parts(rel))
    root = workspace.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise WorkspacePathError(f"{rel!r} leads outside the workspace (through a symlink)")
    return target


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


MAX_LINKS = 40
"""Symlinks followed in one path at most (the kernel's own limit)."""


def _outside(rel: str) -> WorkspacePathError:
    return WorkspacePathError(f"{rel!r} leads outside the workspace (through a symlink)")


@contextlib.contextmanager
def _located(workspace: Path, rel: str, create: bool, want_dir: bool
             ) -> Iterator[tuple[int, str | None]]:
    """Walk ``rel`` from a descriptor of ``workspace``; yield the descriptor of the directory
    that holds the last component and its name (None: that directory is the target).

    Each step is an ``lstat`` and an ``O_NOFOLLOW`` open relative to the directory before,
    so nothing is ever re-resolved by absolute path. A symlink is read and its target
    walked the same way, only while it stays inside: an absolute target, or ``..`` above
    the workspace, is refused. ``..`` pops the directories walked, never asks the kernel.
    ``create`` makes missing directories (not the last component unless ``want_dir``)."""
    todo = deque(workspace_parts(rel))
    stack = [os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    links = 0
    try:
        while todo:
            name = todo.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    raise _outside(rel)
                os.close(stack.pop())
                continue
            last = not todo and not want_dir
            try:
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    yield stack[-1], name
                    return
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: use that one
                    os.mkdir(name, 0o755, dir_fd=stack[-1])
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise WorkspacePathError(f"{rel!r}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    raise _outside(rel)
                todo.extendleft(reversed(target.split("/")))
                continue
            if last:
                yield stack[-1], name
                return
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectory(f"{rel!r}: {name!r} is not a directory")
            try:
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=stack[-1]))
            except OSError as exc:  # replaced by a link or a file since the lstat
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise WorkspacePathError(
                        f"{rel!r} changed while being opened; try again") from None
                raise
        yield stack[-1], None
    finally:
        for fd in stack:
            os.close(fd)


@contextlib.contextmanager
def open_dir(workspace: Path, rel: str, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory ``rel`` inside ``workspace`` (``""`` or ``.``: the
    workspace), walked as :func:`_located` says; closed on exit."""
    if rel in ("", "."):
        rel = "."
    with _located(workspace, rel, create, want_dir=True) as (dir_fd, _):
        yield dir_fd


@dataclass(frozen=True)
class OpenedFile:
    """A regular file of the workspace, open: read or write through ``fd``, never by name."""

    fd: int
    """The open descriptor (closed by :func:`open_file`'s context)."""
    size: int
    """Its size when opened, in bytes."""
    rel: str
    """The workspace-relative path it was opened by, for messages."""


@contextlib.contextmanager
def open_file(workspace: Path, rel: str, write: bool = False) -> Iterator[OpenedFile]:
    """Open the regular file ``rel`` of ``workspace`` (``write``: for writing, created if
    missing with its parent directories, never truncated here); closed on exit.

    Raises :class:`WorkspacePathError` for a bad path or a symlink on the way,
    :class:`NotARegularFile` for anything but a regular file, ``FileNotFoundError`` when
    reading a file that does not exist."""
    with _located(workspace, rel, create=write, want_dir=False) as (dir_fd, name):
        if name is None:
            raise NotARegularFile(f"{rel!r} is a directory, not a file")
        try:
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            if not write:
                raise
        else:
            if not stat.S_ISREG(before.st_mode):
                raise NotARegularFile(f"{rel!r} is {_kind(before.st_mode)}; only regular files "
                                      "are read or written")
        flags = _FILE_FLAGS | (os.O_WRONLY | os.O_CREAT if write else os.O_RDONLY)
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            # Swapped after the lstat: a symlink (ELOOP), a FIFO without reader (ENXIO), …
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
                raise NotARegularFile(f"{rel!r} is not a regular file (it changed while "
                                      "being opened)") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotARegularFile(f"{rel!r} is {_kind(st.st_mode)}; only regular files "
                                      "are read or written")
            if write and st.st_nlink > 1:
                # A hard link shares its data with a file elsewhere: writing here writes there.
                raise WorkspacePathError(f"{rel!r} has {st.st_nlink} hard links; not written")
            os.set_blocking(fd, True)
            yield OpenedFile(fd, st.st_size, rel)
        finally:
            os.close(fd)


def read_bounded(opened: OpenedFile, limit: int) -> bytes:
    """At most ``limit`` bytes of ``opened`` from its start; ``ToolInputError`` past it."""
    if opened.size > limit:
        raise ToolInputError(f"{opened.rel!r} is {opened.size} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.pread(opened.fd, min(1 << 20, limit + 1 - total), total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:  # it grew since the fstat
            raise ToolInputError(f"{opened.rel!r} is over {limit} bytes; the limit is {limit}")
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` at ``fd``'s offset."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_text(workspace: Path, rel: str, text: str) -> None:
    """Replace the workspace file ``rel`` with ``text`` (UTF-8), walked as the module says:
    for code outside the file tools that writes into a workspace sandboxed code shares."""
    with open_file(workspace, rel, write=True) as opened:
        os.ftruncate(opened.fd, 0)
        write_all(opened.fd, text.encode("utf-8"))
