"""The watchdog of the embedded model's server: its own process, in its own session.

Started by ``core.models.local_server`` (``python -m core.models.server_watchdog ...``), it
runs the llama host, publishes the server's state file once the model answers, and stops
the host once no lease holder has been alive for ``--grace-s`` — so even ``kill -9`` of
every client leaves nothing behind. It speaks the state-directory protocol (state files,
leases, the lock) that ``local_server`` defines, through that module's helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.models.llama_host import API_KEY_ENV
from core.models.local_server import (
    ServerInfo,
    _cpu_count,
    _healthy,
    _live_leases,
    _locked,
    _registered,
    _remove_state,
    _start_time,
    _write_state,
)


def _set_pdeathsig() -> None:
    """In the llama child: die with SIGKILL when the watchdog dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _read_port(ready_file: Path, pid: int) -> int | None:
    """The port the llama host reported (``llama_host`` writes it once the model is loaded)."""
    try:
        data = json.loads(ready_file.read_text())
    except (OSError, ValueError):
        return None
    return int(data["port"]) if data.get("pid") == pid else None


def serve(args: argparse.Namespace) -> int:
    """Run the llama host and stop it when no lease holder has been alive for grace_s."""
    root, key = Path(args.root), args.key
    ready_file = root / f".{key}.port"
    ready_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "core.models.llama_host", "--model-path", args.model_path,
        "--alias", args.alias, "--ready-file", str(ready_file),
        "--n-parallel", str(args.n_parallel), "--ctx-per-slot", str(args.n_ctx),
        "--n-threads", str(args.n_threads), "--cache-ram-mib", str(args.cache_ram_mib),
    ]  # fmt: skip
    print(f"watchdog {os.getpid()}: {' '.join(cmd)}", flush=True)
    api_key = os.environ.pop(API_KEY_ENV, "") or secrets.token_urlsafe(24)
    # OMP_WAIT_POLICY=PASSIVE: llama.cpp's OpenMP threads sleep at barriers instead of
    # spinning. On a machine whose cores are shared (other processes, other servers) spinning
    # threads steal the time their partner needs: decode fell to 0.4 tok/s at load average 7
    # on 2 cores, against 10-11 tok/s passive (docs/benchmarks.md, section 6).
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, API_KEY_ENV: api_key}
    llama = subprocess.Popen(cmd, env=env, preexec_fn=_set_pdeathsig)

    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    me: ServerInfo | None = None
    lease_dir = root / "leases" / key
    lease_dir.mkdir(parents=True, exist_ok=True)
    last_client = time.monotonic()
    code = 0
    while not stopping:
        if llama.poll() is not None:
            print(f"watchdog: llama server exited with code {llama.returncode}", flush=True)
            code = llama.returncode or 1
            break
        if me is None:
            port = _read_port(ready_file, llama.pid)
            info = None if port is None else _info(args, root, key, port, api_key)
            if info is not None and _healthy(info, timeout_s=1.0):
                # Published by the watchdog itself, so a server outlives a client that dies
                # while waiting for it, and is found by the others.
                _write_state(root, info)
                ready_file.unlink(missing_ok=True)
                me = info
                print(f"watchdog: ready on port {port}", flush=True)
        elif not _registered(root, key, me.pid):
            print("watchdog: no longer the registered server (stopped or replaced)", flush=True)
            break
        if _live_leases(lease_dir):
            last_client = time.monotonic()
        elif time.monotonic() - last_client > args.grace_s:
            # Decide under the lock so a client that is just taking a lease either is seen
            # here or finds no state file and starts a new server.
            with _locked(root / f"{key}.lock", blocking=False) as got:
                if got and not _live_leases(lease_dir):
                    print(f"watchdog: no clients for {args.grace_s:g} s, stopping", flush=True)
                    _remove_state(root, key, os.getpid())
                    break
        time.sleep(0.25 if me is None else min(1.0, max(args.grace_s / 4, 0.1)))
    _remove_state(root, key, os.getpid())
    ready_file.unlink(missing_ok=True)
    if llama.poll() is None:
        llama.terminate()
        try:
            llama.wait(timeout=10)  # the host stops its server loop, then exits
        except subprocess.TimeoutExpired:
            llama.kill()
            llama.wait()
    print("watchdog: stopped", flush=True)
    return code


def _info(args: argparse.Namespace, root: Path, key: str, port: int, api_key: str) -> ServerInfo:
    return ServerInfo(
        key=key, alias=args.alias, port=port, pid=os.getpid(),
        pid_start=_start_time(os.getpid()) or 0, model_path=args.model_path, n_ctx=args.n_ctx,
        n_parallel=args.n_parallel, api_key=api_key, log_path=str(root / f"{key}.log"),
        started_at=time.time(),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m core.models.server_watchdog ...`` (internal: started by ``local_server``)."""
    p = argparse.ArgumentParser(prog="core.models.server_watchdog",
                                description="run the llama server under a lease watchdog")
    p.add_argument("--root", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--model-path", required=True)
    p.add_argument("--alias", required=True)
    p.add_argument("--n-ctx", type=int, default=8192)
    p.add_argument("--n-parallel", type=int, default=4)
    p.add_argument("--n-threads", type=int, default=_cpu_count())
    p.add_argument("--cache-ram-mib", type=int, default=512)
    p.add_argument("--grace-s", type=float, default=30.0)
    args = p.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
