"""OpenTelemetry export against a real local collector: Phoenix (``arize-phoenix``), started by
the test, the spans read back from its REST API.

Phoenix is big (and pins its own web stack), so it lives in a virtualenv of its own:
``python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install arize-phoenix`` (see
docs/observability.md). The test finds ``phoenix`` in ``$PHOENIX_BIN``, ``.venv-phoenix/bin``
or on the PATH, and skips, saying so, when it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage

from core.models.factory import use_model
from core.settings import load_settings
from core.tracing import otel_enabled, start_otel_run
from orchestrator.cli import main
from tests.scripting import ScriptedTeam, task

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-otel-test-9f3c2a7b1e"
"""A configured API key: it must never reach the collector."""
STARTUP_S = 120.0


def _phoenix_bin() -> str | None:
    for candidate in (os.environ.get("PHOENIX_BIN"), str(REPO / ".venv-phoenix" / "bin" / "phoenix"),
                      shutil.which("phoenix")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Phoenix server of its own (free ports, a temporary working dir); its base URL."""
    binary = _phoenix_bin()
    if binary is None:
        pytest.skip("Phoenix is not installed: python3 -m venv .venv-phoenix && "
                    ".venv-phoenix/bin/pip install arize-phoenix (or set PHOENIX_BIN)")
    workdir = tmp_path_factory.mktemp("phoenix")
    port = _free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(_free_port()), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = open(workdir / "phoenix.log", "wb")  # noqa: SIM115  (closed at teardown)
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"phoenix exited ({proc.returncode}): {(workdir / 'phoenix.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix did not start in {STARTUP_S:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def spans_of(url: str, thread: str, expect: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The spans Phoenix holds for one thread, once at least ``expect`` arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = httpx.get(f"{url}/v1/projects/default/spans", params={"limit": 1000}, timeout=10).json()["data"]
        mine = [s for s in data if s["attributes"].get("session.id") == thread]
        if len(mine) >= expect or time.monotonic() > deadline:
            return mine
        time.sleep(0.5)


class ToolUsing(ScriptedTeam):
    """Task ``a``'s worker reads a file (a tool call) before it answers."""

    def _step(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        step = super()._step(messages)
        if self._marker(messages) == "a" and self.calls["a"] == 1:
            return {"thought": "look first", "action": "read_file", "action_input": {"path": "notes.md"}}
        return step


def test_otel_is_off_by_default_and_on_by_setting_or_standard_variable(monkeypatch: pytest.MonkeyPatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert not otel_enabled(settings) and start_otel_run(settings, "t") is None
    assert otel_enabled(load_settings(otel_endpoint="http://127.0.0.1:4318"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert otel_enabled(settings)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not otel_enabled(settings)


def test_a_runs_trace_tree_reaches_phoenix_with_its_attributes_and_no_secret(
    phoenix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "orchestrator.toml"
    config.write_text(
        f'model = "test"\nadaptive_replanning = false\nverify_results = false\notel_endpoint = "{phoenix}"\n'
        '[models.test]\nprovider = "test"\nmodel = "test"\ntool_mode = "structured"\n'
        f'[models.keyed]\nprovider = "openai"\nmodel = "gpt-x"\napi_key = "{SECRET}"\n'
    )
    team = ToolUsing([{"tasks": [task("a"), task("b", deps=["a"]), task("c")]}], tokens=(100, 50))
    team.fail["c"] = lambda n: ValueError(f"bad input to parser (key {SECRET})")
    with use_model(team.model):
        code = main(["--config", str(config), "run", f"Summarise the notes; key {SECRET}", "--auto-approve",
                     "--json", "--thread", "otel1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 4 and out["status"] == "stopped"  # c failed: not completed

    spans = spans_of(phoenix, "otel1", expect=8)
    by_id = {s["context"]["span_id"]: s for s in spans}
    parent = {s["context"]["span_id"]: by_id.get(s["parent_id"] or "", {}).get("name") for s in spans}
    assert SECRET not in json.dumps(spans)  # masked everywhere: goal, errors, prompts

    [run] = [s for s in spans if s["name"] == "run otel1"]
    assert run["parent_id"] is None and run["span_kind"] == "CHAIN" and run["status_code"] == "ERROR"
    attrs = run["attributes"]
    assert attrs["orchestrator.status"] == "stopped" and attrs["orchestrator.failure_mode"] == "repeated_step"
    assert attrs["orchestrator.tokens"] > 0 and "orchestrator.cost_usd" in attrs
    assert "Summarise the notes" in attrs["input.value"] and "[redacted]" in attrs["input.value"]

    tasks = {s["attributes"]["orchestrator.task_id"]: s for s in spans if s["span_kind"] == "AGENT"}
    assert set(tasks) >= {"a", "b", "c"}
    assert all(parent[t["context"]["span_id"]] == "run otel1" for t in tasks.values())
    a = tasks["a"]["attributes"]
    assert a["orchestrator.agent"] == "writer" and a["orchestrator.model"] == "test"
    assert a["orchestrator.task.status"] == "done" and a["orchestrator.tokens"] > 0
    c_spans = [s for s in spans if s["span_kind"] == "AGENT" and s["attributes"]["orchestrator.task_id"] == "c"]
    assert any(s["attributes"].get("orchestrator.failure_mode") == "repeated_step" for s in c_spans)
    assert all(s["status_code"] == "ERROR" for s in c_spans)

    models = [s for s in spans if s["span_kind"] == "LLM"]
    in_a = [m for m in models if parent[m["context"]["span_id"]] == "task a · writer"]
    assert in_a and all(m["attributes"]["llm.token_count.total"] == 150 for m in in_a)
    assert any(parent[m["context"]["span_id"]] == "run otel1" for m in models)  # planning, synthesis
    [tool] = [s for s in spans if s["span_kind"] == "TOOL"]
    assert tool["name"] == "tool read_file" and parent[tool["context"]["span_id"]] == "task a · writer"
    assert tool["attributes"]["orchestrator.task_id"] == "a"
