"""A live local server that answers slowly is busy generating, not hung: it is reused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from core.models import local_server as ls


def test_a_busy_server_is_reused_not_killed(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    # Stands in for the watchdog of a server busy with a long generation: alive, silent.
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        root = ls._root(tmp_path)
        key = ls.server_key(model, 8192, 4)
        info = ls.ServerInfo(
            key=key, alias="m", port=9, pid=busy.pid,
            pid_start=ls._start_time(busy.pid) or 0, model_path=str(model), n_ctx=8192,
            n_parallel=4, api_key="k", log_path=str(tmp_path / "log"), started_at=time.time(),
        )
        ls._write_state(root, info)
        started = time.monotonic()
        got = ls.ensure_server(model, tmp_path)
        assert got.pid == busy.pid and busy.poll() is None  # reused, still running
        assert time.monotonic() - started < 5  # and without waiting on a health check
    finally:
        busy.kill()
        busy.wait()
