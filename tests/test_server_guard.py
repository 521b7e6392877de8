"""The server's guards without a server: the request guard's rules, the token file, the
review floor a client cannot lower. (tests/test_server_security.py tries them on a live one.)"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agents import run_context
from agents.run_context import RunContext
from core.settings import ConfigError, Settings, load_settings
from orchestrator.http_guard import GuardPolicy, RequestGuard, check, host_name, load_policy
from orchestrator.server_token import (
    TokenError,
    client_token,
    dashboard_address,
    ensure_token,
    read_token,
    token_matches,
)

REPO = Path(__file__).resolve().parents[1]


def scope(method: str = "GET", host: str | None = "127.0.0.1:8123", **headers: str) -> dict[str, Any]:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    if host is not None:
        raw.append((b"host", host.encode()))
    return {"type": "http", "method": method, "scheme": "http", "path": "/threads/search", "headers": raw,
            "root_path": ""}


@pytest.mark.parametrize("host", ["127.0.0.1:8123", "localhost:8123", "LOCALHOST", "[::1]:8123", "127.1.2.3",
                                  "localhost.:8123"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert GuardPolicy().host_allowed(host)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8123", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "", None, "127.0.0.1:notaport", "a@127.0.0.1", "10.0.0.5", "0.0.0.0:8123"])
def test_other_hosts_are_refused(host: str | None) -> None:
    assert not GuardPolicy().host_allowed(host)


def test_an_operator_names_more_hosts() -> None:
    policy = GuardPolicy(allowed_hosts=frozenset({"orch.internal"}))
    assert policy.host_allowed("orch.internal:8123") and policy.host_allowed("ORCH.internal")
    assert not policy.host_allowed("other.internal")
    assert host_name("[::1]:80") == "::1"


def test_origins_other_than_the_servers_own_are_refused_unless_configured() -> None:
    policy = GuardPolicy()
    assert check(policy, scope(origin="http://127.0.0.1:8123")) is None
    assert check(policy, scope()) is None  # no Origin: not a browser's cross-origin request
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "http://localhost:8123", "null",
                   "https://127.0.0.1:8123"):
        refused = check(policy, scope(origin=origin))
        assert refused is not None and refused[0] == 403, origin
    allowed = GuardPolicy(cors_origins=frozenset({"https://app.example"}),
                          cors_origin_regex=re.compile(r"https://.*\.corp\.example"))
    assert check(allowed, scope(origin="https://app.example")) is None
    assert check(allowed, scope(origin="https://x.corp.example")) is None
    assert check(allowed, scope(origin="https://x.corp.example.evil")) is not None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_mutating_requests_must_be_json(method: str) -> None:
    policy = GuardPolicy()
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "TEXT/PLAIN"):
        refused = check(policy, scope(method, content_type=content_type, content_length="2"))
        assert refused is not None and refused[0] == 415, content_type
    refused = check(policy, scope(method, content_length="2"))  # a Blob body: no type at all
    assert refused is not None and refused[0] == 415
    assert check(policy, scope(method, content_type="application/json", content_length="2")) is None
    assert check(policy, scope(method)) is None  # no body (a cancel, a delete)
    assert check(policy, scope("GET", content_type="text/plain")) is None


def test_the_guard_answers_refusals_itself_and_lets_the_rest_through() -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    guard = RequestGuard(app, GuardPolicy())
    asyncio.run(guard(scope(host="evil.example"), receive, send))
    assert not reached and sent[0]["status"] == 403 and b"evil.example" in sent[1]["body"]
    asyncio.run(guard(scope(), receive, send))
    assert reached == ["/threads/search"]
    # The SDK's in-process transport (requests the server makes to itself) is not a browser.
    asyncio.run(guard({**scope(host="api"), "root_path": "/noauth"}, receive, send))
    assert reached == ["/threads/search"] * 2


def test_the_token_file_is_made_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "server-token"
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(token) >= 40 and ensure_token(path) == token == read_token(path)
    assert token_matches(token, token) and not token_matches(token[:-1], token) and not token_matches(None, token)
    assert dashboard_address("127.0.0.1", 8123, token) == f"http://127.0.0.1:8123/dashboard/#token={token}"


def test_an_unsafe_token_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "server-token"
    path.write_text("abc\n")
    path.chmod(0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        read_token(path)
    path.chmod(0o600)
    link = tmp_path / "link-token"
    link.symlink_to(path)
    with pytest.raises(TokenError, match="cannot read"):
        read_token(link)
    with pytest.raises(TokenError, match="make serve"):
        read_token(tmp_path / "missing")
    fifo = tmp_path / "fifo-token"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(TokenError, match="not a regular file"):
        read_token(fifo)  # returns at once: opened non-blocking


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_token_file_as_an_unprivileged_user() -> None:
    """Made by an ordinary user: 0600, theirs; another user's (root's) token is refused, not used."""
    tmp_path = Path(tempfile.mkdtemp(prefix="orch-token-"))  # pytest's own tmp dirs are root's only
    tmp_path.chmod(0o755)
    try:
        _as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _as_nobody(tmp_path: Path) -> None:
    home = tmp_path / "nobody"
    home.mkdir()
    os.chown(home, 65534, 65534)
    script = ("import sys; from pathlib import Path; from orchestrator.server_token import ensure_token, read_token;"
              "p = Path(sys.argv[1]) / 'data' / 'server-token'; t = ensure_token(p); assert read_token(p) == t;"
              "print(oct(p.stat().st_mode & 0o777), p.stat().st_uid)")
    run = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable, "-c", script]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": str(home)}
    done = subprocess.run([*run, str(home)], capture_output=True, text=True, env=env, cwd=home, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0o600", "65534"]
    # root's token file in a place nobody can reach: nobody's CLI finds no token there.
    rooted = tmp_path / "root-data"
    ensure_token(rooted / "server-token")
    rooted.chmod(0o755)  # nobody may look in; the file itself stays root's, 0600
    probe = ("import sys; from pathlib import Path; from orchestrator.server_token import read_token, TokenError\n"
             "try:\n    read_token(Path(sys.argv[1]))\nexcept TokenError as e:\n    print('refused', e)")
    done = subprocess.run([*run[:-3], sys.executable, "-c", probe, str(rooted / "server-token")],
                          capture_output=True, text=True, env=env, cwd=home, timeout=60)
    assert done.stdout.startswith("refused"), done.stdout + done.stderr


def test_the_cli_finds_the_token_in_the_environment_then_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGGRAPH_API_KEY", raising=False)
    settings = load_settings()
    assert client_token(settings) is None
    token = ensure_token(settings.data_dir / "server-token")
    assert client_token(settings) == token
    monkeypatch.setenv("LANGGRAPH_API_KEY", "from-env")
    assert client_token(settings) == "from-env"

    from orchestrator.cli.remote import connect

    client = connect("http://127.0.0.1:1")
    assert client.http.client.headers["authorization"] == "Bearer from-env"


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process acts as the server: overrides come from clients."""
    monkeypatch.setattr(run_context, "_serving_clients", True)


@pytest.mark.parametrize("review", [{"plan": False}, {"high_risk_tools": False}, {"plan": 0},
                                    {"high_risk_tools": "false"}, {"plan": False, "high_risk_tools": False}])
def test_a_client_cannot_turn_a_review_point_off(serving: None, review: dict[str, Any]) -> None:
    base = load_settings()
    with pytest.raises(ConfigError, match="cannot be turned off by a client run") as refused:
        _ = RunContext.build({"review": review}, base=base).settings
    for key in review:
        assert f"review.{key}" in str(refused.value)
    # A thread's stored settings go through the same check (a resume or fork without a context).
    with pytest.raises(ConfigError, match="cannot be turned off"):
        _ = RunContext.build({}, base=base).for_thread({"review": review}).settings


def test_a_client_may_add_review_points(serving: None) -> None:
    base = load_settings(review={"plan": False, "high_risk_tools": True})
    stricter = RunContext.build({"review": {"plan": True, "final_answer": True, "failures": True}}, base=base)
    assert stricter.settings.review.final_answer and stricter.settings.review.plan
    # Off where the operator has it off: not a relaxation.
    assert RunContext.build({"review": {"plan": False}}, base=base).settings.review.plan is False


def test_the_operator_may_let_clients_relax_review(serving: None) -> None:
    base = load_settings(server={"clients_may_relax_review": True})
    assert RunContext.build({"review": {"high_risk_tools": False}}, base=base).settings.review.high_risk_tools is False


def test_the_cli_and_in_process_runs_are_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_context, "_serving_clients", False)
    assert RunContext.build({"review": {"plan": False}}, base=load_settings()).settings.review.plan is False


def test_server_settings_are_never_client_settable() -> None:
    with pytest.raises(ConfigError):
        load_settings(client_settable=["model", "server"])
    assert "server" not in Settings().client_settable


def test_the_policy_comes_from_the_operators_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents import base_settings

    monkeypatch.setenv("ORCHESTRATOR_SERVER__ALLOWED_HOSTS", '["Orch.LAN."]')
    base_settings.cache_clear()
    policy = load_policy()
    assert policy.host_allowed("orch.lan:8123") and not policy.host_allowed("other.lan")
    # http.cors as langgraph-api read it from langgraph.json (its config module, in a server).
    import types

    config = types.SimpleNamespace(CORS_CONFIG={"allow_origins": ["https://app.example"],
                                                "allow_origin_regex": r"https://.*\.corp\.example"})
    monkeypatch.setitem(sys.modules, "langgraph_api.config", config)
    policy = load_policy()
    assert policy.origin_allowed("https://app.example", "http", "127.0.0.1:8123")
    assert policy.origin_allowed("https://a.corp.example", "http", "127.0.0.1:8123")
    assert not policy.origin_allowed("https://evil.example", "http", "127.0.0.1:8123")
