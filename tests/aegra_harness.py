"""Aegra instances on the machine's PostgreSQL and Redis, for the scale-out tests and benchmark.

A ``Cluster`` owns one fresh database (``aegra_test_<hex>``), one Redis key prefix, one shared
``data_dir`` and call log, and starts or kills Aegra instances. With ``separate_hosts`` each
instance gets a ``data_dir`` of its own (as on two machines) and the orchestrator's shared
state goes to the cluster's database (``ORCHESTRATOR_STATE_URI``: schema ``customer_service``
and the result-cache table, beside Aegra's tables). Each instance is one process (``uvicorn aegra_api.main:app``),
so ``kill -9`` hits the process that executes runs. Instances serve the
repository's ``aegra.json`` with the supervisor's model scripted (``tests/aegra_scripted.py``).

Aegra 0.7 and later need Python 3.12 while the project runs on 3.11, so the instances run
from their own interpreter: ``$AEGRA_PYTHON`` or ``.venv-aegra/bin/python`` (``make
aegra-venv``). ``unavailable()`` says why a cluster cannot start here, or returns None.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
STARTUP_TIMEOUT_S = 60.0
LEASE = {"LEASE_DURATION_SECONDS": "10", "HEARTBEAT_INTERVAL_SECONDS": "3", "REAPER_INTERVAL_SECONDS": "2"}
"""Short leases so a dead worker's run is recovered in seconds (defaults: 30 / 10 / 15 s)."""


def aegra_python() -> Path:
    """The interpreter that has aegra-api installed."""
    return Path(os.environ.get("AEGRA_PYTHON") or REPO / ".venv-aegra" / "bin" / "python")


def _answers(address: tuple[str, int]) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(address, timeout=1.0):
        return True
    return False


def unavailable() -> str | None:
    """Why Aegra instances cannot run here (None when they can)."""
    if not _answers(PG):
        return "PostgreSQL does not answer on 127.0.0.1:5432"
    if not _answers(REDIS):
        return "Redis does not answer on 127.0.0.1:6379"
    python = aegra_python()
    if not python.exists():
        return (f"no Aegra interpreter at {python}: aegra-api 0.11 needs Python >= 3.12 "
                "(make aegra-venv, or set AEGRA_PYTHON)")
    check = subprocess.run([str(python), "-c", "import aegra_api, orchestrator"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    if check.returncode != 0:
        return f"{python} cannot import aegra_api and the project: {check.stderr.strip()[-300:]}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@dataclass
class Instance:
    """One running Aegra process."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no drain, no lease release, nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (Aegra drains: unfinished runs go back to the queue), then SIGKILL."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Cluster:
    """A database, a Redis prefix, a data dir and the Aegra instances sharing them."""

    workdir: Path
    jobs_per_instance: int = 10
    latency_s: float = 0.2
    scripted: bool = True
    """Serve the graph with the scripted model (``tests/aegra_scripted.py``); False: the
    served graph as it is (runs pick the test model through their context)."""
    separate_hosts: bool = False
    """One data_dir per instance and the shared state in PostgreSQL (``state_uri``)."""
    hold_after_refund_s: float = 0.0
    """Seconds an instance stalls right after a refund commits, before the step that made
    it can be checkpointed (``tests/aegra_scripted.py``): the window a crash must not
    turn into a second refund."""
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    instances: dict[str, Instance] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"aegra_test_{self.tag}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def data_dir_of(self, name: str) -> Path:
        """The data dir instance ``name`` uses."""
        return self.workdir / f"data-{name}" if self.separate_hosts else self.data_dir

    @property
    def call_log(self) -> Path:
        return self.workdir / "calls.log"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.database}"

    def __enter__(self) -> Cluster:
        _admin(f'CREATE DATABASE "{self.database}"')
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.call_log.touch()
        config = json.loads((REPO / "aegra.json").read_text())
        config["dependencies"] = [str(REPO)]
        if self.scripted:
            config["graphs"] = {"orchestrator": f"{REPO / 'tests' / 'aegra_scripted.py'}:graph"}
        else:
            config["graphs"] = {k: str(REPO / v.removeprefix("./")) for k, v in config["graphs"].items()}
        (self.workdir / "aegra.json").write_text(json.dumps(config, indent=2))
        return self

    def __exit__(self, *exc: object) -> None:
        for instance in self.instances.values():
            instance.stop()
        with contextlib.suppress(Exception):
            _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def env(self, name: str = "") -> dict[str, str]:
        shared_state = {"ORCHESTRATOR_STATE_URI": self.database_url} if self.separate_hosts else {}
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "AEGRA_"))},
            "PYTHONPATH": str(REPO),
            "AEGRA_CONFIG": str(self.workdir / "aegra.json"),
            "DATABASE_URL": self.database_url,
            "REDIS_BROKER_ENABLED": "true",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "WORKER_QUEUE_KEY": f"scaleout:{self.tag}:jobs",
            "REDIS_CHANNEL_PREFIX": f"scaleout:{self.tag}:run:",
            "WORKER_COUNT": "1",
            "N_JOBS_PER_WORKER": str(self.jobs_per_instance),
            "CRON_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            **LEASE,
            "ORCHESTRATOR_MODEL": "test",
            # The operator's model configuration (clients pick a model; they cannot define one).
            "ORCHESTRATOR_MODELS": json.dumps(TEST_MODELS),
            "ORCHESTRATOR_DATA_DIR": str(self.data_dir_of(name)),
            # The tests' runs turn review points off (context() below): the operator allows it.
            "ORCHESTRATOR_SERVER__CLIENTS_MAY_RELAX_REVIEW": "true",
            **shared_state,
            "SCALEOUT_HOLD_AFTER_REFUND_S": str(self.hold_after_refund_s),
            "SCALEOUT_CALL_LOG": str(self.call_log),
            "SCALEOUT_LATENCY_S": str(self.latency_s),
            "LANGSMITH_TRACING": "false",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGGRAPH_NO_VERSION_CHECK": "true",
        }

    def start(self, *names: str) -> list[Instance]:
        """Start (or restart) the named instances; wait until each is healthy.

        The first start of a cluster brings one instance up alone: it runs Aegra's migrations
        and the checkpointer's ``setup()``, which race (duplicate ``pg_type``) when several
        processes create the schema at once. Later ones start together."""
        if not self.instances and len(names) > 1:
            return self.start(names[0]) + self.start(*names[1:])
        started = [self._spawn(name) for name in names]
        for instance in started:
            self._wait_healthy(instance)
        return started

    def _spawn(self, name: str) -> Instance:
        port = free_port()
        log = self.workdir / f"{name}.log"
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [str(aegra_python()), "-m", "uvicorn", "aegra_api.main:app",
                 "--host", "127.0.0.1", "--port", str(port)],
                cwd=self.workdir, env=self.env(name), stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        instance = Instance(name=name, url=f"http://127.0.0.1:{port}", proc=proc, log=log)
        self.instances[name] = instance
        return instance

    def _wait_healthy(self, instance: Instance) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not instance.alive():
                raise RuntimeError(
                    f"aegra {instance.name} exited with {instance.proc.returncode}:\n{instance.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{instance.url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.3)
        instance.kill()
        raise RuntimeError(
            f"aegra {instance.name} did not become healthy in {STARTUP_TIMEOUT_S:.0f}s:\n{instance.tail()}")

    def calls(self) -> list[tuple[int, str, str]]:
        """Every scripted model step so far: (pid, kind, marker)."""
        out = []
        for line in self.call_log.read_text().splitlines():
            pid, kind, marker = line.split(" ", 2)
            out.append((int(pid), kind, marker))
        return out

    def runs(self) -> list[dict[str, Any]]:
        """Aegra's runs table: id, thread, status, claimed_by, retries."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            return list(conn.execute(
                "SELECT run_id, thread_id, status, claimed_by, "
                "COALESCE((execution_params->>'_retry_count')::int, 0) AS retries FROM runs"
            ))


TEST_MODELS = {"test": {"provider": "test", "model": "test", "tool_mode": "structured"}}
"""The instances' model configuration: the test model taking structured steps."""


def context(**overrides: Any) -> dict[str, Any]:
    """A run's context: the test model, structured steps, no review unless asked."""
    review = {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False}
    review.update(overrides.pop("review", {}))
    return {
        "model": "test",
        "review": review,
        "adaptive_replanning": False,
        "verify_results": False,
        **overrides,
    }
