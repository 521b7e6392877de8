"""The embedded model end to end: llama.cpp's server (xllamacpp), shared, slots, prompt cache,
constrained structured output, usage, watchdog.

Small and fast on purpose (short prompts, few tokens): it runs in CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from core.models.factory import chat_model
from core.models.gguf import ARTIFACTS, ModelNotInstalledError, ensure_gguf, locate_chunks
from core.models.local_server import (
    ServerInfo,
    ensure_server,
    release_lease,
    running_servers,
    stop_server,
)
from core.models.structured import ainvoke_structured, structured_stats
from core.settings import ModelConfig, Settings


def _skip_reason() -> str | None:
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp not installed (pip install 'agent-orchestrator[local]')"
    try:
        locate_chunks(ARTIFACTS["local"])
    except ModelNotInstalledError as err:
        return str(err)
    return None


pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]

SLOTS = 2
RULES = " ".join(
    f"Rule {i}: name the ticket's product, quote the customer, and never promise a refund."
    for i in range(12)
)  # a long stable prefix, as an agent's instructions are


class Ticket(BaseModel):
    """Triage a support ticket."""

    category: Literal["billing", "bug", "other"] = Field(description="The ticket's category.")
    keywords: list[str] = Field(description="One to three keywords from the ticket.")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def gguf() -> Path:
    # The real cache (assembled once per machine), not a temp copy of 0.5 GB per run.
    return ensure_gguf("local", Settings().cache_dir)


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Server state in a private directory: independent of any server the user runs.
    root = tmp_path_factory.mktemp("local-server")
    yield root
    stop_server(root)


@pytest.fixture(scope="module")
def server(gguf: Path, server_dir: Path) -> ServerInfo:
    start = time.perf_counter()
    info = ensure_server(gguf, server_dir, n_ctx=2048, n_parallel=SLOTS, grace_s=2)
    print(f"server ready in {time.perf_counter() - start:.1f} s")
    return info


def _settings(gguf: Path, server_dir: Path) -> Settings:
    cfg = ModelConfig(provider="local", model=str(gguf), context_window=2048, max_tokens=48)
    return Settings(
        cache_dir=server_dir, model="tiny", models={"tiny": cfg}, local={"n_parallel": SLOTS}
    )


def _get(info: ServerInfo, path: str, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(f"http://127.0.0.1:{info.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, None


def test_server_has_the_slots_and_requires_its_key(server: ServerInfo) -> None:
    assert server.n_parallel == SLOTS and server.n_ctx == 2048
    assert _get(server, "/v1/models", None)[0] == 401
    assert _get(server, "/v1/models", "wrong")[0] == 401
    status, slots = _get(server, "/slots", server.api_key)
    assert status == 200 and len(slots) == SLOTS
    assert {slot["n_ctx"] for slot in slots} == {2048}  # every slot fits a whole call
    assert server.api_key not in repr(server)


async def test_structured_output_is_constrained_json_schema(
    server: ServerInfo, gguf: Path, server_dir: Path
) -> None:
    model = chat_model(_settings(gguf, server_dir), "supervisor")
    assert isinstance(model, ChatOpenAI) and model.openai_api_base == server.base_url
    before = structured_stats()
    result = await ainvoke_structured(
        model,
        Ticket,
        [
            ("system", "You triage support tickets."),
            ("human", "Ticket: I was charged twice for my subscription this month."),
        ],
    )
    assert isinstance(result.value, Ticket)
    assert not result.raw.tool_calls and json.loads(str(result.raw.content))  # JSON content
    assert result.attempts == 1 and result.errors == []
    assert (result.usage.invalid_outputs, result.usage.repair_retries) == (0, 0)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    after = structured_stats()
    assert after.by_method.get("json_schema", 0) == before.by_method.get("json_schema", 0) + 1


async def test_structured_output_when_streaming_reports_usage(
    server: ServerInfo, gguf: Path, server_dir: Path
) -> None:
    # Graph runs streamed with stream_mode="messages" make ChatOpenAI stream every call.
    model = chat_model(_settings(gguf, server_dir), "supervisor")
    streaming = model.model_copy(update={"streaming": True})
    result = await ainvoke_structured(
        streaming, Ticket, [("system", "You triage support tickets."), ("human", "App crashes.")]
    )
    assert isinstance(result.value, Ticket) and result.usage.invalid_outputs == 0
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


def test_json_object_response_format(server: ServerInfo, gguf: Path, server_dir: Path) -> None:
    model = chat_model(_settings(gguf, server_dir), "writer")
    reply = model.bind(response_format={"type": "json_object"}).invoke(
        "Return a JSON object with keys name and age for Alice, 30."
    )
    assert isinstance(json.loads(str(reply.content)), dict)
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] <= 48  # cap honoured


def test_repeated_prefix_is_read_from_the_prompt_cache(
    server: ServerInfo, gguf: Path, server_dir: Path
) -> None:
    model = chat_model(_settings(gguf, server_dir), "writer")
    system = f"[{time.time_ns()}] You answer support tickets. {RULES}"  # new to the server

    def cache_read(reply: Any) -> int:
        usage = reply.usage_metadata
        assert usage and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        return int((usage.get("input_token_details") or {}).get("cache_read") or 0)

    first = model.invoke([("system", system), ("human", "Ticket 1: my order is late.")])
    assert cache_read(first) < 10  # only the chat template's first tokens were cached
    again = model.invoke([("system", system), ("human", "Ticket 2: the app crashes.")])
    assert cache_read(again) > 200  # the shared system prompt
    chunks: list[Any] = list(model.stream([("system", system), ("human", "Ticket 3: hi.")]))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed = streamed + chunk
    assert streamed.text and cache_read(streamed) > 200  # reported when streaming too


def test_two_processes_share_one_server_then_watchdog_exits(
    server: ServerInfo, gguf: Path, server_dir: Path
) -> None:
    code = (
        "import json, sys\n"
        "from core.models.local_server import ensure_server\n"
        f"info = ensure_server({str(gguf)!r}, {str(server_dir)!r}, n_ctx=2048, n_parallel={SLOTS},"
        " grace_s=2)\n"
        "print(json.dumps([info.port, info.pid]), flush=True)\n"
        "sys.stdin.read()\n"  # hold the lease until killed
    )
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    other = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert other.stdout is not None
        line = other.stdout.readline()
        assert json.loads(line) == [server.port, server.pid]  # reused, not a second server
        llama = _children(server.pid)
        assert len(llama) == 1
        # Both clients go away: ours releases its lease, the other is killed hard.
        release_lease(server_dir)
        other.send_signal(signal.SIGKILL)
        other.wait()
        assert _wait_gone([server.pid, *llama], timeout_s=25), "watchdog/llama still running"
        assert running_servers(server_dir) == []
        assert not (server_dir / "server" / f"{server.key}.json").exists()
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_killed_watchdog_takes_llama_along_then_restart_and_stop(
    gguf: Path, tmp_path: Path
) -> None:
    first = ensure_server(gguf, tmp_path, n_ctx=512, grace_s=60)
    llama = _children(first.pid)
    assert running_servers(tmp_path) == [first] and len(llama) == 1
    os.kill(first.pid, signal.SIGKILL)  # even kill -9 of the watchdog orphans nothing
    assert _wait_gone([first.pid, *llama], timeout_s=10)
    second = ensure_server(gguf, tmp_path, n_ctx=512, grace_s=60)  # stale state: restarted
    assert second.pid != first.pid and running_servers(tmp_path) == [second]
    llama = _children(second.pid)
    assert stop_server(tmp_path) == 1
    assert _wait_gone([second.pid, *llama], timeout_s=10)
    assert running_servers(tmp_path) == []
