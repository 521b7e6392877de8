"""The LangGraph dev server, started for tests exactly as the README says.

``readme_server`` (session-scoped, registered in conftest.py so every server test shares one)
copies the repository to a fresh directory — what a new clone is — and runs ``make serve
PORT=<free port>`` there with the default configuration: no ``ORCHESTRATOR_*`` variables,
so the relative default ``data_dir`` (``.orchestrator``) is used, resolved in that directory.
``make -o <venv>/.installed`` only tells make that the virtualenv running the tests is set up
already (it would otherwise install into it); the command run is the Makefile's own.

The server answers only requests carrying its token (``<data_dir>/server-token``, made by
``make serve``): ``Server.token`` is it, ``Server.headers`` the header clients send, and
``token_for(url)`` finds the token of a server this session started by its URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
LANGGRAPH = Path(sys.executable).parent / "langgraph"
STARTUP_TIMEOUT_S = 90.0
SKIP_COPY = {".git", ".venv", ".orchestrator", ".langgraph_api", ".pytest_cache", ".mypy_cache",
             ".ruff_cache", "node_modules", "__pycache__", "build", "dist"}
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TEST_TRACKING": "false",
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_API_URL = re.compile(r"API:\s*(http://[\w.\-]+:\d+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_copy(target: Path) -> Path:
    """The repository's files, as a fresh clone has them (no venv, data or caches)."""
    shutil.copytree(REPO, target, ignore=lambda _dir, names: [n for n in names if n in SKIP_COPY
                                                             or n.endswith(".egg-info")])
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a user has: no orchestrator settings, offline LangGraph/LangSmith."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.pop("PYTHONPATH", None)  # the server imports the code in its own directory
    return {**env, **OFFLINE_ENV, **extra}


def log_text(log: Path) -> str:
    return _ANSI.sub("", log.read_text(errors="replace"))


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log_text(log).splitlines()[-lines:])


TOKEN_FILE = Path(".orchestrator") / "server-token"
"""The token file of a server run with the default data dir, relative to its directory."""
_TOKENS: dict[str, str] = {}


def token_for(url: str) -> str:
    """The token of the server this session started at ``url``."""
    return _TOKENS[url.rstrip("/")]


def auth_headers(token: str) -> dict[str, str]:
    """What a client sends to be let in."""
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Server:
    """A running dev server: where it answers, where it runs and logs, and its token."""

    url: str
    cwd: Path
    log: Path
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The header that lets a client in."""
        return auth_headers(self.token)


@contextlib.contextmanager
def serve(command: Sequence[str], cwd: Path, env: Mapping[str, str], port: int,
          token_file: Path | None = None) -> Iterator[Server]:
    """Run ``command`` (a dev server) until it answers on ``port``; always stop it after.

    ``token_file``: where the server's token is (default: the default data dir's)."""
    if not LANGGRAPH.exists() or importlib.util.find_spec("langgraph_api") is None:
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[dev]')")
    log = cwd.parent / f"server-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        url = _wait_ready(proc, log, port)
        token = (token_file or cwd / TOKEN_FILE).read_text().strip()
        _TOKENS[url] = token
        yield Server(url=url, cwd=cwd, log=log, token=token)
    finally:
        _stop(proc)


def make_serve(cwd: Path, port: int) -> list[str]:
    """The README's command: ``make serve PORT=…`` (with this test run's virtualenv)."""
    return ["make", "--no-print-directory", "-o", f"{VENV}/.installed", "serve",
            f"PORT={port}", f"VENV={VENV}"]


OPERATOR_CONFIG = """\
[models.small]
provider = "test"
model = "test-small"
context_window = 4096

[server]
clients_may_relax_review = true
"""
"""The README server's configuration: the defaults plus one named model, and clients allowed
to turn review points off (most tests drive runs that must not pause; the default, which
refuses that, is tested in tests/test_server_security.py)."""


@pytest.fixture(scope="session")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``make serve`` in a fresh copy of the repository, default settings."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    clone = fresh_copy(tmp_path_factory.mktemp("clone") / "agent-orchestrator")
    # What an operator adds: a second named model, which clients may pick (not define).
    (clone / "orchestrator.toml").write_text(OPERATOR_CONFIG)
    port = free_port()
    with serve(make_serve(clone, port), clone, clean_env(), port) as server:
        yield server


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, port: int) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{tail(log)}")
        match = _API_URL.search(log_text(log))
        url = match.group(1) if match else f"http://127.0.0.1:{port}"
        try:
            if httpx.get(f"{url}/ok", timeout=1.0).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the server did not answer within {STARTUP_TIMEOUT_S:.0f}s:\n{tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server we started (its own process group), escalating if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
