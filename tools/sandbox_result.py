"""What a sandboxed run is given and what it produced: its limits, its captured output (a
bounded head and tail, with the audit hook's markers pulled out), the child's report
records, and the :class:`SandboxResult` the parent builds from them (:mod:`tools.sandbox`
runs the child)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from dataclasses import dataclass, field
from typing import Any

from core.text import truncate_middle

_MARK = b"\x1esandbox:"
"""Prefix of the (advisory) lines the child's audit hook writes to stderr."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits (and the isolation policy) of one sandboxed run."""

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
    """Size of the private /tmp."""
    allow_unisolated: bool = False
    """Run code with only rlimits and the audit hook when no namespaces are available
    (``sandbox.allow_unisolated``). Off: such a run is refused."""


@dataclass(frozen=True)
class CheckReport:
    """Harness mode: the outcome of loading the code and of each check, in order."""

    load_error: str | None
    results: tuple[str | None, ...]
    """``None`` for a check that passed, else its error (``Type: message``)."""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run."""

    exit_code: int | None
    """The code's exit status, as reported on the trusted channel; negative = killed by
    that signal; None = it never ran or never reported one."""
    stdout: str
    stderr: str
    reason: str | None
    """Why the run was stopped, refused or failed for a sandbox reason."""
    duration_s: float
    timed_out: bool = False
    violations: tuple[str, ...] = ()
    """Operations the audit hook refused (even when the code caught the error). Advisory:
    read from stderr, which the code can write too; it never makes a run succeed."""
    isolation: tuple[str, ...] = field(default=())
    """Confinement layers that were active, e.g. ("userns", "chroot", "no_caps", …)."""
    checks: CheckReport | None = None
    """Harness mode only: what the trusted harness reported."""
    refused: bool = False
    """The sandbox refused to run the code (no isolation available)."""

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
        if self.isolation:
            lines.append("isolation: " + ", ".join(self.isolation))
        if self.violations and not (self.reason or "").startswith("blocked"):
            lines.append("sandbox refused: " + "; ".join(self.violations))
        budget = max(200, max_chars - len(lines[0]) - 60)
        out_budget = budget if not self.stderr else budget * 2 // 3
        if self.stdout:
            lines += ["--- stdout ---", truncate_middle(self.stdout, out_budget)]
        if self.stderr:
            lines += [
                "--- stderr ---",
                truncate_middle(self.stderr, budget - min(len(self.stdout), out_budget)),
            ]
        if not self.stdout and not self.stderr:
            lines.append("(no output)")
        return "\n".join(lines)


class Capture:
    """Reads a stream, keeping a bounded head and tail; pulls out the hook's markers."""

    def __init__(self, limit: int, markers: bool) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.pending = b""
        self.want_markers = markers
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
            if self.want_markers and line.startswith(_MARK):
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


def refusal(reason: str) -> SandboxResult:
    """A run the sandbox refused (no isolation available, bubblewrap failed)."""
    return SandboxResult(None, "", "", reason, 0.0, refused=True)


def parse_report(data: bytes) -> list[dict[str, Any]]:
    """The JSON records the child wrote on the trusted report channel."""
    records = []
    for line in data.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def sandbox_result(
    records: list[dict[str, Any]],
    out: Capture,
    err: Capture,
    limits: SandboxLimits,
    timed_out: bool,
    duration: float,
) -> SandboxResult:
    """The outcome of a run from its report records and captured output."""
    isolation: tuple[str, ...] = ()
    setup_error = None
    code_rc: int | None = None
    checks = None
    for record in records:
        kind = record.get("kind")
        if kind == "layers":
            isolation = tuple(str(x) for x in record.get("layers", []))
        elif kind == "setup-failed" and setup_error is None:
            setup_error = str(record.get("reason"))
        elif kind == "status":
            signum = record.get("signal")
            code_rc = -int(signum) if signum is not None else int(record.get("exit", 1))
        elif kind == "checks":
            checks = CheckReport(record.get("load_error"), tuple(record.get("results") or ()))
    if timed_out and code_rc is None:
        code_rc = -signal.SIGKILL  # the parent killed it: that much is known first-hand
    violations = tuple(text for kind, text in err.markers if kind == "blocked")
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
        checks=checks,
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
    if setup_error is not None:
        return f"sandbox setup failed ({setup_error}); the code did not run"
    if rc is None:
        return "the sandbox reported no exit status (its monitor was killed); not trusted"
    if rc == 0:
        return None
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
    if rc < 0:
        return f"killed by signal {signal.Signals(-rc).name}"
    return None
