"""Serve a GGUF model on loopback with llama.cpp's native OpenAI-compatible server (xllamacpp).

One server per (model, context per slot, slots) is shared by every process of the machine.
It decodes ``n_parallel`` requests together (continuous batching), each slot with its own
context of ``n_ctx`` tokens and prompt cache; prefixes of evicted slots stay in a RAM cache
capped at ``cache_ram_mib``. Its state lives under ``cache_dir/server/`` (mode 0700):

- ``<key>.json``: the running server (watchdog pid, port, API key, model); ``<key>.lock``
  serializes starting and stopping.
- ``leases/<key>/<pid>-<starttime>``: one file per client process using the server.
- ``<key>.log``: the server's output (its tail is shown when it fails to start).

The llama server (``python -m core.models.llama_host``) runs under a small watchdog
(``python -m core.models.server_watchdog``, in its own session; see that module) that stops it once no
lease process has been alive for a grace period, so even ``kill -9`` of every client leaves
nothing behind; the llama process also dies with the watchdog (PR_SET_PDEATHSIG). The server
answers only to a random API key kept in the state file.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from core.models.llama_host import API_KEY_ENV

__all__ = [
    "ServerInfo",
    "ServerStartError",
    "ensure_server",
    "release_lease",
    "running_servers",
    "server_key",
    "stop_server",
]

HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The local model server did not become ready; the message includes its log tail."""


@dataclass(frozen=True)
class ServerInfo:
    """A running local model server."""

    key: str
    """Identity of the server: model alias plus a hash of path, n_ctx and n_parallel."""
    alias: str
    """Model name the server answers to (send it as ``model``)."""
    port: int
    """Loopback port."""
    pid: int
    """The watchdog's pid (its process group also holds the llama server)."""
    pid_start: int
    """The watchdog's start time (/proc ticks), to tell it from a reused pid."""
    model_path: str
    """The GGUF file served."""
    n_ctx: int
    """Context size of each slot in tokens (the longest call the server accepts)."""
    n_parallel: int
    """Slots: requests decoded together."""
    api_key: str
    """The key the server requires (``Authorization: Bearer``); never logged."""
    log_path: str
    """The server's log file."""
    started_at: float
    """Unix time the server was started."""

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"ServerInfo(key={self.key!r}, port={self.port}, pid={self.pid})"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL."""
        return f"http://{HOST}:{self.port}/v1"


# -- client side ------------------------------------------------------------------------


def server_key(model_path: Path, n_ctx: int, n_parallel: int) -> str:
    """The key of the server for this model file and configuration."""
    ident = f"{Path(model_path).resolve()}|{n_ctx}|{n_parallel}"
    return f"{_alias(model_path)}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"


def ensure_server(
    model: str | os.PathLike[str],
    cache_dir: Path,
    *,
    n_ctx: int = 8192,
    n_parallel: int = 4,
    n_threads: int | None = None,
    cache_ram_mib: int = 512,
    grace_s: float = 30.0,
    ready_timeout_s: float = 180.0,
) -> ServerInfo:
    """A healthy server for ``model`` (built-in name or .gguf path), started if needed.

    ``n_ctx`` is the context of each of the ``n_parallel`` slots. Takes a lease for this
    process (dropped at exit). A server already running for the same model and settings is
    reused; otherwise the GGUF is assembled/verified and a new server is started on a free
    loopback port and awaited (ServerStartError after ready_timeout_s).
    """
    from core.models.gguf import ModelNotInstalledError, ensure_gguf

    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelNotInstalledError(
            "xllamacpp (llama.cpp's server) is not installed; install it with: "
            "pip install 'agent-orchestrator[local]'"
        )
    cache_dir = Path(cache_dir)
    path = _model_path(model, cache_dir)
    key = server_key(path, n_ctx, n_parallel)
    root = _root(cache_dir)
    with _locked(root / f"{key}.lock"):
        _take_lease(root, key)
        info = _read_state(root, key)
        if info is not None and _alive(info.pid, info.pid_start):
            # The state file is written only once the server answered, so a live process is
            # a ready server. It is never killed for answering slowly: with every slot busy
            # with long generations a healthy server looks exactly like a hung one, and
            # killing it would fail those tasks (requests have their own timeout).
            return info
        _remove_state(root, key)
        verified = ensure_gguf(os.fspath(model), cache_dir)
        opts = _Options(n_ctx, n_parallel, n_threads or _cpu_count(), cache_ram_mib, grace_s)
        return _start(root, key, verified, opts, ready_timeout_s)


def stop_server(cache_dir: Path, model: str | None = None, *, timeout_s: float = 15.0) -> int:
    """Stop the servers for ``model`` (all servers when None); returns how many were stopped."""
    root = _root(Path(cache_dir))
    stopped = 0
    for info in running_servers(cache_dir):
        if model is not None and info.alias != _alias(_model_path(model, Path(cache_dir))):
            continue
        with _locked(root / f"{info.key}.lock"):
            if _alive(info.pid, info.pid_start):
                _terminate(info.pid, info.pid_start, timeout_s)
                stopped += 1
            _remove_state(root, info.key)
    return stopped


def running_servers(cache_dir: Path) -> list[ServerInfo]:
    """Servers whose watchdog is alive (stale state files are ignored)."""
    root = _root(Path(cache_dir))
    out = []
    for state in sorted(root.glob("*.json")):
        info = _read_state(root, state.stem)
        if info is not None and _alive(info.pid, info.pid_start):
            out.append(info)
    return out


def release_lease(cache_dir: Path, key: str | None = None) -> None:
    """Drop this process's lease(s) now instead of at exit."""
    for lease in _root(Path(cache_dir)).glob(f"leases/{key or '*'}/{_lease_name(os.getpid())}"):
        lease.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Options:
    n_ctx: int
    n_parallel: int
    n_threads: int
    cache_ram_mib: int
    grace_s: float


def _start(
    root: Path, key: str, model_path: Path, opts: _Options, ready_timeout_s: float
) -> ServerInfo:
    log_path = root / f"{key}.log"
    cmd = [
        sys.executable, "-m", "core.models.server_watchdog",
        "--root", str(root), "--key", key, "--model-path", str(model_path),
        "--alias", _alias(model_path), "--n-ctx", str(opts.n_ctx),
        "--n-parallel", str(opts.n_parallel), "--n-threads", str(opts.n_threads),
        "--cache-ram-mib", str(opts.cache_ram_mib), "--grace-s", str(opts.grace_s),
    ]  # fmt: skip
    # The watchdog must import this package whatever the client's working directory is.
    pythonpath = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
        API_KEY_ENV: secrets.token_urlsafe(24),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # not killed by the client's Ctrl-C: others share it
        )  # fmt: skip
    pid_start = _start_time(proc.pid) or 0
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _tail(log_path)
            raise ServerStartError(
                f"local model server exited with code {proc.returncode} while starting "
                f"{model_path}; log {log_path}:\n{tail}"
            )
        info = _read_state(root, key)  # the watchdog writes it once llama answers
        if info is not None and info.pid == proc.pid:
            threading.Thread(target=proc.wait, daemon=True).start()  # reap it later
            return info
        time.sleep(0.25)
    _terminate(proc.pid, pid_start)
    proc.wait()
    raise ServerStartError(
        f"local model server for {model_path} not ready after {ready_timeout_s:.0f} s; "
        f"log {log_path}:\n{_tail(log_path)}"
    )


def _model_path(model: str | os.PathLike[str], cache_dir: Path) -> Path:
    from core.models.gguf import ARTIFACTS, gguf_target

    name = os.fspath(model)
    return gguf_target(name, cache_dir) if name in ARTIFACTS else Path(name).expanduser().resolve()


def _alias(model_path: Path) -> str:
    return Path(model_path).stem


def _root(cache_dir: Path) -> Path:
    root = cache_dir / "server"
    (root / "leases").mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        root.chmod(0o700)  # state files hold the servers' API keys
    return root


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _healthy(info: ServerInfo, timeout_s: float = 5.0) -> bool:
    """GET /v1/models answers and serves our alias (not some other process on a reused port)."""
    request = urllib.request.Request(
        f"{info.base_url}/models", headers={"Authorization": f"Bearer {info.api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            data = json.load(resp)
    except (OSError, ValueError):
        return False
    return any(m.get("id") == info.alias for m in data.get("data", []))


def _terminate(pid: int, pid_start: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the watchdog (it stops llama), then SIGKILL the whole group if it lingers."""
    if not _alive(pid, pid_start):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid, pid_start):
        time.sleep(0.1)
    if _alive(pid, pid_start):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the watchdog leads its own session/group


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# -- state, leases, processes -------------------------------------------------------------


def _read_state(root: Path, key: str) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads((root / f"{key}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(root: Path, info: ServerInfo) -> None:
    tmp = root / f".{info.key}.json.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the API key
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(asdict(info)))
    os.replace(tmp, root / f"{info.key}.json")


def _registered(root: Path, key: str, pid: int) -> bool:
    """The state file names this watchdog (stop_server or a replacement removes it)."""
    info = _read_state(root, key)
    return info is not None and info.pid == pid


def _remove_state(root: Path, key: str, pid: int | None = None) -> None:
    """Remove the state file (only if it still names ``pid``, when given)."""
    state = root / f"{key}.json"
    if pid is not None:
        info = _read_state(root, key)
        if info is None or info.pid != pid:
            return
    state.unlink(missing_ok=True)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (Linux); None if gone/unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> int | None:
    """Process start time in clock ticks since boot (Linux); None if unknown/gone."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int, start: int | None) -> bool:
    """The process exists, is not a zombie and (if known) started at ``start`` (pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()  # no /proc: trust kill(0)
    if fields[0] == "Z":
        return False
    return not start or int(fields[19]) == start


def _lease_name(pid: int) -> str:
    return f"{pid}-{_start_time(pid) or 0}"


_leases: set[Path] = set()


def _take_lease(root: Path, key: str) -> None:
    lease_dir = root / "leases" / key
    lease_dir.mkdir(parents=True, exist_ok=True)
    lease = lease_dir / _lease_name(os.getpid())
    lease.touch()
    if not _leases:
        atexit.register(_drop_leases)
    _leases.add(lease)


def _drop_leases() -> None:
    for lease in _leases:
        lease.unlink(missing_ok=True)


def _live_leases(lease_dir: Path) -> int:
    """Count leases of live processes; delete those of dead ones."""
    live = 0
    for lease in lease_dir.glob("*-*"):
        pid_s, _, start_s = lease.name.partition("-")
        try:
            pid, start = int(pid_s), int(start_s)
        except ValueError:
            continue
        if _alive(pid, start):
            live += 1
        else:
            lease.unlink(missing_ok=True)
    return live


@contextlib.contextmanager
def _locked(path: Path, blocking: bool = True) -> Iterator[bool]:
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
