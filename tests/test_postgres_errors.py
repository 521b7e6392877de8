"""PostgreSQL that cannot be reached, and URIs that are not PostgreSQL: one line, exit 2.

Every case the README promises: a refused port, a listener that accepts and never answers
(the connect timeout, ``db_connect_timeout_s``), an unknown database, an unknown host, for
``checkpoint_uri`` and ``state_uri`` alike; and a URI of another scheme refused by name,
never taken for a SQLite file.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from orchestrator.cli import main
from tests.conftest import PG_URI, postgres_available


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP listener that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, setting: str,
         uri: str, *args: str) -> tuple[int, str, float]:
    monkeypatch.setenv(f"ORCHESTRATOR_{setting.upper()}", uri)
    started = time.monotonic()
    code = main(list(args) or ["run", "Summarize the refund policy", "--model", "test",
                               "--auto-approve", "--json"])
    captured = capsys.readouterr()
    return code, captured.err + captured.out, time.monotonic() - started


@pytest.mark.parametrize("setting", ["checkpoint_uri", "state_uri"])
def test_refused_and_silent_servers_are_one_line_exit_2(
    setting: str, silent_port: int, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = f"postgresql://postgres:s3cret@127.0.0.1:{_closed_port()}/postgres"
    code, text, _ = _run(capsys, monkeypatch, setting, refused)
    assert code == 2, text
    assert text.strip().count("\n") == 0 and "Traceback" not in text
    assert text.startswith(f"orchestrator: {setting}: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "Connection refused" in text and "s3cret" not in text

    monkeypatch.setenv("ORCHESTRATOR_DB_CONNECT_TIMEOUT_S", "2")
    silent = f"postgresql://postgres@127.0.0.1:{silent_port}/postgres"
    code, text, took = _run(capsys, monkeypatch, setting, silent)
    assert code == 2 and took < 15, (text, took)
    assert text.strip() == (f"orchestrator: {setting}: cannot connect to PostgreSQL at "
                            f"127.0.0.1:{silent_port}/postgres: no answer within 2 s "
                            "(db_connect_timeout_s)")


def test_unknown_database_and_host(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URI}")
    base = PG_URI.rsplit("/", 1)[0]
    code, text, _ = _run(capsys, monkeypatch, "checkpoint_uri", f"{base}/no_such_db_28")
    assert code == 2 and text.strip().count("\n") == 0, text
    assert 'database "no_such_db_28" does not exist' in text
    code, text, _ = _run(capsys, monkeypatch, "checkpoint_uri",
                         "postgresql://postgres@no-such-host.invalid/postgres")
    assert code == 2 and "failed to resolve host" in text and text.strip().count("\n") == 0


@pytest.mark.parametrize("setting", ["checkpoint_uri", "state_uri"])
@pytest.mark.parametrize("uri", ["mysql://u:p@127.0.0.1/db", "sqlite:///x.db", "checkpoints.db"])
def test_other_schemes_are_refused_by_name(
    setting: str, uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, text, _ = _run(capsys, monkeypatch, setting, uri)
    assert code == 2 and text.strip().count("\n") == 0, text
    assert f"{setting}: " in text
    assert "the supported schemes are postgresql:// and postgres://" in text
    assert not any(p.name.startswith(("mysql", "sqlite", "checkpoints.db"))
                   for p in tmp_path.rglob("*")), list(tmp_path.rglob("*"))


def test_connect_timeout_is_configurable_and_kept_when_given() -> None:
    s = Settings(checkpoint_uri="postgresql://h/db", state_uri="postgres://h/db?sslmode=disable",
                 db_connect_timeout_s=7)
    assert s.checkpoint_uri == "postgresql://h/db?connect_timeout=7"
    assert s.state_uri == "postgres://h/db?sslmode=disable&connect_timeout=7"
    assert Settings(checkpoint_uri="postgresql://h/db?connect_timeout=3").checkpoint_uri.endswith(
        "?connect_timeout=3")
    assert Settings().checkpoint_uri is None
