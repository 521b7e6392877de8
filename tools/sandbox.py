"""Run untrusted Python in a confined child process (the parent side of the sandbox).

The child is this interpreter started in isolated mode (``-I``) with
:mod:`tools._sandbox_child` as its main script; that bootstrap confines itself (network
and mount namespaces, a minimal chroot, uid ``nobody``, resource limits, an audit hook)
before it runs the code. This module spawns it without blocking the event loop, enforces
the wall-clock timeout by killing the whole process group, caps captured output and turns
the outcome into a :class:`SandboxResult` with a clear reason when the code was stopped.

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
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.paths import resolve_in_workspace

_CHILD = Path(__file__).with_name("_sandbox_child.py")
_MARK = b"\x1esandbox:"
_SETUP_FAILED = 125
_NOBODY = 65534
MAX_CODE_CHARS = 200_000


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 10.0
    """Wall-clock limit; the whole process group is killed when it passes."""
    cpu_s: int = 10
    """CPU-seconds limit (RLIMIT_CPU)."""
    memory_mb: int = 512
    """Address-space limit (RLIMIT_AS); allocations beyond it raise MemoryError."""
    max_output_chars: int = 8000
    """Characters of stdout+stderr returned to the model (head and tail are kept)."""
    max_processes: int = 32
    """Processes and threads of the sandbox user (RLIMIT_NPROC)."""
    max_file_mb: int = 16
    """Largest file the code may write (RLIMIT_FSIZE)."""
    max_open_files: int = 256
    """Open file descriptors (RLIMIT_NOFILE)."""
    tmp_mb: int = 64
    """Size of the private /tmp (when the mount namespace is available)."""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run."""

    exit_code: int | None
    """Process exit status; negative = killed by that signal; None = never started."""
    stdout: str
    stderr: str
    reason: str | None
    """Why the run was stopped or failed for a sandbox reason (timeout, memory, policy…)."""
    duration_s: float
    timed_out: bool = False
    violations: tuple[str, ...] = ()
    """Operations the sandbox policy refused (even when the code caught the error)."""
    isolation: tuple[str, ...] = field(default=())
    """Confinement layers that were active, e.g. ("netns", "chroot", "uid:nobody", …)."""

    @property
    def ok(self) -> bool:
        """True when the code exited with status 0 and was not stopped."""
        return self.exit_code == 0 and self.reason is None

    def to_text(self, max_chars: int = 8000) -> str:
        """Compact report for a model: status line, then stdout and stderr within budget."""
        if self.ok:
            head = f"exit code 0 ({self.duration_s:.1f}s)"
        else:
            head = f"FAILED: exit code {self.exit_code}"
            if self.reason:
                head += f" — {self.reason}"
        lines = [head]
        if self.violations and not (self.reason or "").startswith("blocked"):
            lines.append("sandbox refused: " + "; ".join(self.violations))
        budget = max(200, max_chars - len(lines[0]) - 60)
        out_budget = budget if not self.stderr else budget * 2 // 3
        if self.stdout:
            lines += ["--- stdout ---", _clip(self.stdout, out_budget)]
        if self.stderr:
            lines += [
                "--- stderr ---",
                _clip(self.stderr, budget - min(len(self.stdout), out_budget)),
            ]
        if not self.stdout and not self.stderr:
            lines.append("(no output)")
        return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    """Keep head and tail (tracebacks end with the useful line)."""
    limit = max(limit, 100)
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - 2 * half} chars cut] …\n{text[-half:]}"


class _Capture:
    """Reads a stream, keeping a bounded head and tail and pulling out sandbox markers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.pending = b""
        self.markers: list[tuple[str, str]] = []

    def feed(self, data: bytes, final: bool = False) -> None:
        data = self.pending + data
        lines = data.split(b"\n")
        self.pending = b"" if final else lines.pop()
        if len(self.pending) > 65536:  # a huge line without newline: it is plain output
            lines.append(self.pending)
            self.pending = b""
        for i, line in enumerate(lines):
            nl = b"" if final and i == len(lines) - 1 else b"\n"
            if line.startswith(_MARK):
                kind, _, text = line[len(_MARK) :].decode("utf-8", "replace").partition(" ")
                self.markers.append((kind, text))
            else:
                self._keep(line + nl)

    def _keep(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                cut = len(self.tail) - self.limit
                self.dropped += cut
                del self.tail[:cut]

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.feed(chunk)
        self.feed(b"", final=True)

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if self.dropped:
            return f"{head}\n… [{self.dropped} bytes cut] …\n{tail}"
        return head + tail


def _prepare(workspace: Path, filename: str | None, code: str) -> tuple[Path, str | None]:
    """Create the workspace, write the script file, hand the tree to the sandbox user."""
    ws = workspace.resolve()
    ws.mkdir(parents=True, exist_ok=True)
    rel: str | None = None
    if filename:
        target = resolve_in_workspace(ws, filename)
        if target.suffix != ".py":
            raise ValueError(f"filename must end in .py, got {filename!r}")
        if code:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        elif not target.is_file():
            raise FileNotFoundError(f"no file {filename!r} in the workspace and no code given")
        rel = str(target.relative_to(ws))
    if os.geteuid() == 0:
        _chown_tree(ws, _NOBODY)
    return ws, rel


def _chown_tree(root: Path, uid: int) -> None:
    """Give the workspace to the sandbox user (it runs as ``nobody``, not as root).

    Never follows symlinks and skips multiply-linked files, so nothing outside the
    tree can change owner through a link planted inside it.
    """
    os.lchown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if st.st_uid == uid and st.st_gid == uid:
                continue
            if not os.path.isdir(path) and st.st_nlink > 1:
                continue
            os.lchown(path, uid, uid)


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


async def run_sandboxed(
    code: str,
    workspace: Path,
    limits: SandboxLimits | None = None,
    *,
    filename: str | None = None,
    audit: bool = True,
    namespaces: bool = True,
) -> SandboxResult:
    """Run ``code`` (or the workspace file ``filename``) confined to ``workspace``.

    With ``filename`` and ``code`` the code is first written to that workspace file and run
    from there (so tracebacks show its lines and other files can import it); with only
    ``filename`` the existing file runs. ``audit`` and ``namespaces`` exist for tests that
    check each layer alone; tools always use both.
    """
    limits = limits or SandboxLimits()
    if len(code) > MAX_CODE_CHARS:
        raise ValueError(f"code is {len(code)} chars; the limit is {MAX_CODE_CHARS}")
    ws, rel = await asyncio.to_thread(_prepare, workspace, filename, code)
    config = {
        "workspace": str(ws),
        "filename": rel,
        "audit": audit,
        "namespaces": namespaces,
        "tmp_mb": limits.tmp_mb,
        "limits": {k: v for k, v in asdict(limits).items() if k not in ("timeout_s", "tmp_mb")},
    }
    # Each stream may hold the whole budget; to_text() splits it between them.
    out = _Capture(limits.max_output_chars * 2)
    err = _Capture(limits.max_output_chars * 2)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-B",
        "-X",
        "utf8",
        str(_CHILD),
        json.dumps(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ws),
        env=_child_env(ws),
        start_new_session=True,  # its own process group, killed as a whole
    )
    readers = [
        asyncio.create_task(out.drain(proc.stdout)),
        asyncio.create_task(err.drain(proc.stderr)),
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
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
        # Escaped descendants could hold the pipes open; do not wait on them for long.
        _, still = await asyncio.wait(readers, timeout=2.0)
        for task in still:
            task.cancel()
    duration = time.monotonic() - started
    markers = err.markers + out.markers
    code_rc = proc.returncode
    violations = tuple(text for kind, text in markers if kind == "blocked")
    isolation: tuple[str, ...] = ()
    setup_error = None
    for kind, text in markers:
        if kind == "layers":
            with contextlib.suppress(ValueError):
                isolation = tuple(json.loads(text))
        elif kind == "setup-failed":
            setup_error = text
        elif kind == "status":  # the code's own status, relayed by the PID namespace's init
            how, _, num = text.partition(" ")
            with contextlib.suppress(ValueError):
                status = int(num)
                code_rc = -status if how == "signal" else status
    stderr = err.text()
    reason = _reason(code_rc, stderr, limits, timed_out, violations, setup_error)
    return SandboxResult(
        exit_code=code_rc,
        stdout=out.text(),
        stderr=stderr,
        reason=reason,
        duration_s=duration,
        timed_out=timed_out,
        violations=violations,
        isolation=isolation,
    )


def _reason(
    rc: int | None,
    stderr: str,
    limits: SandboxLimits,
    timed_out: bool,
    violations: tuple[str, ...],
    setup_error: str | None,
) -> str | None:
    if timed_out:
        return f"timed out after {limits.timeout_s:g}s (wall clock); the process was killed"
    if rc == 0:
        return None
    if setup_error is not None and rc == _SETUP_FAILED:
        return f"sandbox setup failed ({setup_error}); the code did not run"
    if rc == -signal.SIGXCPU:
        return f"CPU time limit exceeded ({limits.cpu_s}s); the process was killed"
    if rc == -signal.SIGKILL:
        return "killed (SIGKILL): CPU hard limit reached or the system ran out of memory"
    tail = stderr[-2000:]
    if "MemoryError" in tail:
        return f"memory limit exceeded ({limits.memory_mb} MB)"
    if "File too large" in tail or rc == -signal.SIGXFSZ:
        return f"file size limit exceeded ({limits.max_file_mb} MB)"
    if violations:
        return f"blocked by sandbox policy: {violations[0]}"
    if rc is not None and rc < 0:
        return f"killed by signal {signal.Signals(-rc).name}"
    return None
