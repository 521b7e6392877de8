"""Secret masking and the LangSmith tracing hooks (offline: nothing is uploaded)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from core.redact import MASK, redact, secret_values
from core.settings import ModelConfig, Settings
from core.tracing import (
    anonymizer,
    redacting_client,
    trace_run,
    tracing_config,
    tracing_enabled,
)

SECRET = "sk-test-SECRET-123"
ENV_SECRET = "sk-env-SECRET-456"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Settings:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_SECRET)
    return Settings(
        model="test",
        data_dir=tmp_path,
        models={"paid": ModelConfig(provider="openai", model="gpt-x", api_key=SecretStr(SECRET))},
        checkpoint_uri="postgresql://orch:pg-pass-789@127.0.0.1:5432/orch",
        mcp_servers={"kb": {"transport": "http", "url": "http://127.0.0.1:9/mcp",
                            "headers": {"Authorization": "Bearer mcp-token-000"}}},
    )


def test_secret_values_collects_settings_env_uri_and_mcp_headers(settings: Settings) -> None:
    secrets = secret_values(settings)
    for value in (SECRET, ENV_SECRET, "pg-pass-789", "Bearer mcp-token-000", "mcp-token-000"):
        assert value in secrets
    assert secrets == sorted(secrets, key=lambda s: (-len(s), s))  # longest first


def test_redact_masks_strings_nested_values_and_keys(settings: Settings) -> None:
    assert redact(f"key={SECRET}; env={ENV_SECRET}", settings) == f"key={MASK}; env={MASK}"
    obj: dict[str, Any] = {"a": [f"x {SECRET} y", ("t", SECRET)], SECRET: {"n": 3, "s": SecretStr("whatever")}, "ok": 1.5}
    masked = redact(obj, settings)
    assert masked == {"a": [f"x {MASK} y", ("t", MASK)], MASK: {"n": 3, "s": MASK}, "ok": 1.5}
    assert obj["a"][0] == f"x {SECRET} y"  # the input is not modified
    assert redact("Authorization: Bearer mcp-token-000", settings) == f"Authorization: {MASK}"


def test_redact_accepts_explicit_secrets_and_ignores_tiny_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.endswith(("API_KEY", "_TOKEN"))]:
        monkeypatch.delenv(name, raising=False)
    assert redact("abc-secret-def", ["secret"]) == f"abc-{MASK}-def"
    assert redact("abc-secret-def", "secret") == f"abc-{MASK}-def"
    assert redact("a x b", ["x"]) == "a x b"  # one-letter placeholder keys would blank everything
    assert redact(42, ["secret"]) == 42


def test_tracing_config_names_runs_per_task_and_agent() -> None:
    config = {"configurable": {"thread_id": "th-9"}}
    cfg = tracing_config({"id": "t1", "agent": "researcher"}, "researcher", config)
    assert cfg == {
        "run_name": "task t1 · researcher",
        "metadata": {"task_id": "t1", "agent": "researcher", "thread_id": "th-9"},
        "tags": ["task:t1", "agent:researcher"],
    }

    class Spec:
        name = "coder"

    assert tracing_config("t2", Spec(), {})["run_name"] == "task t2 · coder"
    assert tracing_config("t3", "writer")["metadata"]["thread_id"] == ""  # outside a graph run


def test_tracing_is_off_without_flag_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.delenv("LANGCHAIN_TRACING_V2", raising=False)
    assert not tracing_enabled()
    with trace_run(None, "th"):
        pass
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)
    monkeypatch.delenv("LANGCHAIN_API_KEY", raising=False)
    assert not tracing_enabled()
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key-0000")
    assert tracing_enabled()


class _FakeClient:
    """Stands in for langsmith.Client, which would contact the API when constructed."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_trace_run_uses_a_client_that_masks_secrets(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import langsmith
    from langsmith.run_helpers import get_tracing_context

    monkeypatch.setattr(langsmith, "Client", _FakeClient)
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key-0000")
    with trace_run(settings, "th-1"):
        context = get_tracing_context()
        client = context["client"]
        assert isinstance(client, _FakeClient)
        assert context["metadata"] == {"thread_id": "th-1"}
        mask = client.kwargs["anonymizer"]
        assert mask({"prompt": f"use {SECRET}"}) == {"prompt": f"use {MASK}"}
        assert mask({"out": [ENV_SECRET], "error": "key lsv2-test-key-0000"}) == {"out": [MASK], "error": f"key {MASK}"}
    assert get_tracing_context()["client"] is not client
    assert isinstance(redacting_client(settings), _FakeClient)


def test_anonymizer_plugs_into_a_real_client_offline(settings: Settings) -> None:
    from langsmith import Client

    # auto_batch_tracing=False: no background thread, nothing contacts the API.
    client = Client(api_key="lsv2-test-key-0000", auto_batch_tracing=False, anonymizer=anonymizer(settings))
    assert client._hide_run_inputs({"prompt": f"use {SECRET}"}) == {"prompt": f"use {MASK}"}
