"""Run untrusted Python in a confined child process (the parent side of the sandbox).

The child is this interpreter started in isolated mode (``-I``) with
:mod:`tools._sandbox_child` as its main script; that bootstrap confines itself (a user
namespace with mount, PID, network, IPC and UTS namespaces, a minimal ``chroot`` with the
interpreter read-only and the workspace writable, no capabilities, resource limits, an
audit hook) before it runs the code. Where the kernel refuses user namespaces, bubblewrap
(``bwrap``) builds the namespaces instead when it is installed; otherwise the code does
**not** run, unless ``allow_unisolated`` is set (``sandbox.allow_unisolated = true``).
See ``docs/sandbox.md`` for what each layer protects against.

Results come back on a pipe the parent opened for the child (the *report* channel); the
process that runs the code closes its end first, so nothing the code prints or exits
with can forge a status, a layer list or a check result. This module spawns the child
without blocking the event loop, enforces the wall-clock timeout by killing the whole
process group, caps captured output and turns the outcome into a :class:`SandboxResult`
(:mod:`tools.sandbox_result`: the limits, the captured output and the result).

What is allowed, deliberately: the standard library and installed packages (imports
only; ``pytest`` runs in-process, e.g. ``import pytest; raise SystemExit(pytest.main(
["-q"]))``), reading and writing files in the workspace, a private scratch ``/tmp``,
threads (up to ``max_processes``). What is not: network, other processes, files
outside the workspace, native code through ``ctypes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from tools.paths import open_file, workspace_parts, write_text
from tools.sandbox_result import (
    Capture,
    CheckReport,
    SandboxLimits,
    SandboxResult,
    parse_report,
    refusal,
    sandbox_result,
)

__all__ = ["MAX_CODE_CHARS", "CheckReport", "Mode", "SandboxLimits", "SandboxResult", "bwrap_path",
           "candidate_modes", "run_sandboxed"]

_CHILD = Path(__file__).with_name("_sandbox_child.py")
_SETUP_FAILED = 125
_NOBODY = 65534
_SANDBOX_ID = 1000
MAX_CODE_CHARS = 200_000
Mode = Literal["userns", "bwrap", "none"]
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _prepare(workspace: Path, filename: str | None, code: str) -> tuple[Path, str | None]:
    """Create the workspace, write the script file, hand the tree to the sandbox user.

    Code of another task may be running in the same workspace, so the script is written
    and the tree walked by descriptor (:mod:`tools.paths`, ``os.fwalk``), never by a path
    a rename could redirect."""
    ws = workspace.resolve()
    ws.mkdir(parents=True, exist_ok=True)
    rel: str | None = None
    if filename:
        parts = workspace_parts(filename)
        if not parts or not parts[-1].endswith(".py"):
            raise ValueError(f"filename must end in .py, got {filename!r}")
        if code:
            write_text(ws, filename, code)
        else:
            try:
                with open_file(ws, filename):
                    pass
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"no file {filename!r} in the workspace and no code given") from None
        rel = "/".join(parts)
    if os.geteuid() == 0:
        _chown_tree(ws, _NOBODY)
    return ws, rel


def _chown_tree(root: Path, uid: int) -> None:
    """Give the workspace to the sandbox user (root's sandboxes run as ``nobody``).

    Walks by directory descriptor and never follows symlinks (a directory renamed or
    replaced by a link meanwhile is not entered), and skips multiply-linked files, so
    nothing outside the tree can change owner through a link planted inside it.
    """
    os.lchown(root, uid, uid)
    for _, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirnames + filenames:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if st.st_uid == uid and st.st_gid == uid:
                    continue
                if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                    continue
                os.chown(name, uid, uid, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile by code running in the workspace
                continue


def _child_env(ws: Path) -> dict[str, str]:
    # A fresh, minimal environment: API keys and tokens of the server never reach the code.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(ws),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTEST_ADDOPTS": "-p no:cacheprovider",
        "NO_COLOR": "1",
    }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _python_roots() -> list[str]:
    roots = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    out: list[str] = []
    for p in sorted((r for r in roots if os.path.isdir(r)), key=lambda s: (s.count("/"), s)):
        if p != "/" and not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def bwrap_path() -> str | None:
    """The bubblewrap binary, when installed."""
    return shutil.which("bwrap", path="/usr/bin:/usr/local/bin:/bin")


def _bwrap_argv(bwrap: str, ws: Path, tmp_mb: int) -> list[str]:
    """bubblewrap arguments that build the same view as the userns mode's chroot."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    argv += ["--uid", str(_SANDBOX_ID), "--gid", str(_SANDBOX_ID), "--hostname", "sandbox"]
    argv += ["--cap-drop", "ALL", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for d in ("/bin", "/sbin"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
    for d in _python_roots():
        argv += ["--ro-bind", d, d]
    for f in _ETC_FILES:
        argv += ["--ro-bind-try", f, f]
    for dev in _DEVICES:
        argv += ["--dev-bind-try", dev, dev]
    child = str(_CHILD.resolve())
    argv += ["--ro-bind", child, child, "--bind", str(ws), str(ws), "--chdir", str(ws)]
    argv += ["--remount-ro", "/", "--"]
    return argv


def candidate_modes(limits: SandboxLimits) -> list[Mode]:
    """Isolation modes to try, strongest first (see the module docstring)."""
    modes: list[Mode] = ["userns"]
    if os.geteuid() != 0 and bwrap_path():
        modes.append("bwrap")
    if limits.allow_unisolated:
        modes.append("none")
    return modes


async def run_sandboxed(
    code: str,
    workspace: Path,
    limits: SandboxLimits | None = None,
    *,
    filename: str | None = None,
    checks: Sequence[str] | None = None,
    check_timeout_s: float = 3.0,
    audit: bool = True,
    modes: Sequence[Mode] | None = None,
) -> SandboxResult:
    """Run ``code`` (or the workspace file ``filename``) confined to ``workspace``.

    With ``filename`` and ``code`` the code is first written to that workspace file and run
    from there (so tracebacks show its lines and other files can import it); with only
    ``filename`` the existing file runs. With ``checks`` (harness mode) ``code`` is loaded
    as module ``solution`` in a fresh process per check, each check runs in it with a
    ``check_timeout_s`` limit, and the outcomes come back in ``result.checks``.

    When no mode can isolate the code, the result has ``refused=True`` and a one-line
    ``reason`` naming what is missing; the code did not run. ``audit`` and ``modes``
    exist for tests that check one layer alone; tools use the defaults.
    """
    limits = limits or SandboxLimits()
    if len(code) > MAX_CODE_CHARS:
        raise ValueError(f"code is {len(code)} chars; the limit is {MAX_CODE_CHARS}")
    ws, rel = await asyncio.to_thread(_prepare, workspace, filename, code)
    config: dict[str, Any] = {
        "workspace": str(ws),
        "filename": rel,
        "audit": audit,
        "tmp_mb": limits.tmp_mb,
        "limits": {
            k: v
            for k, v in asdict(limits).items()
            if k not in ("timeout_s", "tmp_mb", "allow_unisolated")
        },
    }
    if checks is not None:
        config["checks"] = list(checks)
        config["check_timeout_s"] = check_timeout_s
    refusals: list[str] = []
    started = time.monotonic()
    for mode in modes or candidate_modes(limits):
        result = await _run_mode(mode, code, ws, config, limits)
        if not result.refused:
            return result
        refusals.append(result.reason or mode)
    if "bwrap" not in (modes or candidate_modes(limits)):
        refusals.append(
            "bubblewrap (bwrap) is not installed"
            if not bwrap_path()
            else "bubblewrap is not used as root"
        )
    reason = (
        "sandbox unavailable: "
        + "; ".join(refusals)
        + "; the code did not run (enable unprivileged user namespaces, install bubblewrap, "
        "or set sandbox.allow_unisolated = true to run it without isolation)"
    )
    return SandboxResult(
        exit_code=None,
        stdout="",
        stderr="",
        reason=reason,
        duration_s=time.monotonic() - started,
        refused=True,
    )


async def _run_mode(
    mode: Mode, code: str, ws: Path, config: dict[str, Any], limits: SandboxLimits
) -> SandboxResult:
    """One attempt in one mode; ``refused`` when that mode's isolation is unavailable."""
    report_r, report_w = os.pipe()
    config = {**config, "mode": mode, "report_fd": report_w}
    argv = [sys.executable, "-I", "-B", "-X", "utf8", str(_CHILD), json.dumps(config)]
    if mode == "bwrap":
        bwrap = bwrap_path()
        if bwrap is None:
            os.close(report_r)
            os.close(report_w)
            return refusal("bubblewrap (bwrap) is not installed")
        argv = _bwrap_argv(bwrap, ws, limits.tmp_mb) + argv
    # Each stream may hold the whole budget; to_text() splits it between them.
    out = Capture(limits.max_output_chars * 2, markers=False)
    err = Capture(limits.max_output_chars * 2, markers=True)
    report = bytearray()
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(ws),
            env=_child_env(ws),
            pass_fds=(report_w,),
            start_new_session=True,  # its own process group, killed as a whole
        )
    finally:
        os.close(report_w)
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(report_r, "rb", buffering=0)
    )

    async def read_report() -> None:
        while (chunk := await reader.read(65536)) and len(report) < 1 << 20:
            report.extend(chunk)

    readers = [
        asyncio.create_task(out.drain(proc.stdout)),
        asyncio.create_task(err.drain(proc.stderr)),
        asyncio.create_task(read_report()),
    ]
    timed_out = False
    try:
        try:
            async with asyncio.timeout(limits.timeout_s):
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(code.encode("utf-8"))
                    await proc.stdin.drain()
                    proc.stdin.close()
                # Not proc.wait(): it also waits for the pipes to close, which leftover
                # descendants could hold open. The exit status is set as soon as it exits.
                while proc.returncode is None:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            timed_out = True
    finally:
        _kill_group(proc.pid)  # also reaps anything the code left behind
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        try:
            await asyncio.wait_for(proc.wait(), timeout=2.0)
        except TimeoutError:
            # Escaped descendants still hold the pipes: close our ends (asyncio has no
            # public API for this) so no transport is left for the GC to complain about.
            sub = getattr(proc, "_transport", None)
            if sub is not None:
                sub.close()
        _, still = await asyncio.wait(readers, timeout=2.0)
        for task in still:
            task.cancel()
        transport.close()
    records = parse_report(bytes(report))
    refused = next((r["reason"] for r in records if r.get("kind") == "refused"), None)
    if refused is not None:
        return refusal(str(refused))
    if mode == "bwrap" and not records and not timed_out:
        # bwrap failed before our bootstrap started: its own message says why.
        why = err.text().strip().splitlines()
        return refusal("bubblewrap failed: " + (why[-1] if why else f"exit {proc.returncode}"))
    return sandbox_result(records, out, err, limits, timed_out, time.monotonic() - started)
