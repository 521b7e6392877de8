"""Settings: sources in order, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import RunContext
from core.settings import ConfigError, load_settings


def test_defaults_use_the_embedded_model():
    settings = load_settings()
    assert settings.model == "local" and settings.model_for("coder").provider == "local"
    assert settings.review.plan and settings.limits.max_concurrency == 4


def test_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "orchestrator.toml"
    config.write_text('model = "test"\n[limits]\nmax_tasks = 5\nmax_rounds = 7\n')
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(config))
    monkeypatch.setenv("ORCHESTRATOR_LIMITS__MAX_ROUNDS", "9")
    settings = load_settings()
    assert settings.model == "test" and settings.limits.max_tasks == 5 and settings.limits.max_rounds == 9
    assert load_settings(model="local").model == "local"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[limits]\nmax_concurrency = 0\n", "limits.max_concurrency"),
        ("[budgets]\nrun_tokens = -5\n", "budgets.run_tokens"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[models.x]\nprovider = 'magic'\n", "models.x.provider"),
        ("[roles]\nchef = 'test'\n", "unknown role"),
        ("model = 'gpt-9'\n", "model: unknown model 'gpt-9'"),
    ],
)
def test_errors_name_the_bad_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, key: str):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(config))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert key in str(err.value) and str(config) in str(err.value)


def test_env_errors_name_the_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORCHESTRATOR_LIMITS__MAX_TASKS", "many")
    with pytest.raises(ConfigError, match=r"limits\.max_tasks"):
        load_settings()


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", "/nonexistent/orchestrator.toml")
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()


def test_run_context_overrides_are_validated():
    base = load_settings()
    run = RunContext.build({"model": "test", "budgets": {"run_tokens": 10}}, base=base).settings
    assert run.model == "test" and run.budgets.run_tokens == 10 and base.model == "local"
    with pytest.raises(ConfigError, match=r"limits\.max_rounds"):
        RunContext.build({"limits": {"max_rounds": 0}}, base=base)
    with pytest.raises(ConfigError, match=r"colour: unknown key"):
        RunContext.build({"colour": "blue"}, base=base)


def test_a_thread_without_a_context_runs_with_its_stored_overrides():
    base = load_settings()
    bare = RunContext.build(base=base)
    stored = {"model": "test"}
    first = bare.for_thread(stored)
    assert first.settings.model == "test" and bare.for_thread(stored) is first  # validated once
    given = RunContext.build({"limits": {"max_rounds": 3}}, base=base)
    assert given.for_thread(stored) is given  # a context of its own wins


def test_a_server_takes_from_clients_only_the_settable_settings(monkeypatch: pytest.MonkeyPatch):
    """In a server process (``serve_clients``), a run's overrides — given or stored in the
    thread — may only name ``client_settable`` settings; in-process runs are the operator's."""
    import agents.run_context as run_context

    base = load_settings(_file=False)
    assert RunContext.build({"data_dir": "/tmp/x"}, base=base).settings.data_dir == Path("/tmp/x")
    monkeypatch.setattr(run_context, "_serving_clients", True)
    assert RunContext.build({"model": "test", "review": {"final_answer": True}}, base=base).settings.model == "test"
    for refused in ({"data_dir": "/tmp/x"}, {"mcp_servers": {}}, {"models": {}}, {"checkpoint_uri": "postgresql://h/db"}):
        with pytest.raises(ConfigError, match=r"cannot be set by a client run"):
            RunContext.build({"model": "test", **refused}, base=base)
        with pytest.raises(ConfigError, match=f"'{next(iter(refused))}'"):  # a resume with no context
            _ = RunContext().for_thread({"model": "test", **refused}).settings
    widened = base.with_overrides({"client_settable": ["model", "data_dir"]})
    assert RunContext.build({"data_dir": "/tmp/y"}, base=widened).settings.data_dir == Path("/tmp/y")
    with pytest.raises(ConfigError, match="client_settable"):
        base.with_overrides({"client_settable": ["no_such_setting"]})
