"""The server ``make serve`` starts, seen by the clients it must refuse: web pages.

A fresh copy of the repository with no configuration at all (the defaults: review points on,
clients may not turn them off), started with ``make serve``. Each test here would have passed
an attack on the server before it had a token and a request guard: a page of any origin got
``access-control-allow-origin: *`` and the threads' state; a ``text/plain`` resume approved a
pending action; a ``text/plain`` run with ``"review": {"high_risk_tools": false}`` acted with
no approval; ``Host: evil.example`` was answered (DNS rebinding).

The last test does it in a real browser (Debian's chromium): a page served from another
loopback port cannot read threads or answer a pause, while the dashboard (opened at the
printed address), the CLI's ``--url`` and the Python SDK example still work with the token.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_harness import (
    Server,
    clean_env,
    free_port,
    fresh_copy,
    log_text,
    make_serve,
    serve,
)
from tests.test_dashboard import CHROMIUM, DRIVER_DIR, driver  # noqa: F401  (playwright-core, installed once)

pytestmark = pytest.mark.server

ASSISTANT = "orchestrator"
EVIL = "http://evil.example"
RUN_TIMEOUT_S = 60.0
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``make serve`` in a fresh copy with no orchestrator.toml: every setting at its default."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    clone = fresh_copy(tmp_path_factory.mktemp("secure") / "agent-orchestrator")
    port = free_port()
    with serve(make_serve(clone, port), clone, clean_env(), port) as server:
        yield server
    log = log_text(server.log)
    # The token is printed once, by make serve, before the server starts; the server never logs it.
    assert log.count(server.token) == 1, "the token reached the server's log"


def paused_thread(server: Server) -> tuple[str, str]:
    """A thread paused for its plan review (test model, default review): (thread id, interrupt id)."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=RUN_TIMEOUT_S) as http:
        thread = http.post("/threads", json={}).raise_for_status().json()
        tid = thread["thread_id"]
        http.post(f"/threads/{tid}/runs/wait", json={
            "assistant_id": ASSISTANT, "input": {"goal": "List three prime numbers."},
            "context": {"model": "test"}}).raise_for_status()
        state = http.get(f"/threads/{tid}/state").raise_for_status().json()
    assert len(state["interrupts"]) == 1, state["interrupts"]
    return tid, state["interrupts"][0]["id"]


def still_paused(server: Server, tid: str, interrupt_id: str) -> bool:
    state = httpx.get(f"{server.url}/threads/{tid}/state", headers=server.headers, timeout=10).json()
    return [i["id"] for i in state["interrupts"]] == [interrupt_id] and not state["values"].get("results")


def test_make_serve_prints_the_dashboard_address_with_the_token(default_server: Server) -> None:
    printed = log_text(default_server.log)
    match = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/dashboard/)#token=(\S+)", printed)
    assert match, printed[:2000]
    assert match.group(1) == f"{default_server.url}/dashboard/" and match.group(2) == default_server.token
    assert "LANGGRAPH_API_KEY" in printed
    token_file = default_server.cwd / ".orchestrator" / "server-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(default_server.token) >= 40


def test_a_foreign_origin_gets_no_cors_and_no_private_network_grant(default_server: Server) -> None:
    for origin in (EVIL, f"http://127.0.0.1:{free_port()}", "null"):
        preflight = httpx.options(f"{default_server.url}/threads/search", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
            "Access-Control-Request-Private-Network": "true"})
        assert preflight.status_code == 403, (origin, preflight.status_code)
        assert not any(h.startswith("access-control-") for h in preflight.headers), preflight.headers
        # Even with the token (which a page does not have), another origin is refused.
        search = httpx.post(f"{default_server.url}/threads/search", json={}, timeout=10,
                            headers={"Origin": origin, **default_server.headers})
        assert search.status_code == 403 and "access-control-allow-origin" not in search.headers
        assert "thread_id" not in search.text
    same = httpx.post(f"{default_server.url}/threads/search", json={}, timeout=10,
                      headers={"Origin": default_server.url, **default_server.headers})
    assert same.status_code == 200


def test_the_api_answers_only_the_token(default_server: Server) -> None:
    url = default_server.url
    paused_thread(default_server)  # something to leak
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"},
                    {"x-auth-scheme": "langsmith"},  # the dev server's Studio shortcut is off
                    {"Authorization": f"Basic {default_server.token}"}):
        response = httpx.post(f"{url}/threads/search", json={}, headers=headers, timeout=10)
        assert response.status_code == 401, (headers, response.status_code)
        assert "thread_id" not in response.text and default_server.token not in response.text
    for route in ("/assistants/search", "/runs/wait", "/store/items/search"):
        assert httpx.post(f"{url}{route}", json={}, timeout=10).status_code == 401, route
    assert httpx.post(f"{url}/threads/search", json={}, headers=default_server.headers, timeout=10).json()
    assert httpx.post(f"{url}/threads/search", json={}, headers={"x-api-key": default_server.token},
                      timeout=10).json()
    # What needs no token holds no data: the health check and the dashboard's static files.
    assert httpx.get(f"{url}/ok", timeout=10).status_code == 200
    assert httpx.get(f"{url}/dashboard/", timeout=10).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_a_body_a_page_can_send_without_preflight_is_refused(default_server: Server,
                                                             content_type: str | None) -> None:
    """The resume that approved a pending action from a page: refused before anything reads it,
    with the token or without; the pause stays."""
    tid, interrupt_id = paused_thread(default_server)
    body = json.dumps({"assistant_id": ASSISTANT, "command": {"resume": {
        interrupt_id: {"decisions": [{"type": "approve"}]}}}}).encode()
    for headers in ({}, default_server.headers):
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        request = httpx.Request("POST", f"{default_server.url}/threads/{tid}/runs/wait", content=body, headers=sent)
        if content_type is None:
            request.headers.pop("content-type", None)
        with httpx.Client(timeout=RUN_TIMEOUT_S) as http:
            response = http.send(request)
        assert response.status_code == 415, (content_type, headers.keys(), response.status_code, response.text)
    assert still_paused(default_server, tid, interrupt_id)


def test_a_host_that_is_not_loopback_is_refused(default_server: Server) -> None:
    """DNS rebinding: a page's own name pointed at 127.0.0.1 is not this server's name."""
    port = default_server.url.rsplit(":", 1)[1]
    for path in ("/ok", "/info", "/dashboard/", "/threads/search"):
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", ""):
            response = httpx.request("POST" if path == "/threads/search" else "GET", f"{default_server.url}{path}",
                                     headers={"Host": host, **default_server.headers, **JSON}, content=b"{}", timeout=10)
            assert response.status_code == 403, (path, host, response.status_code)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(f"{default_server.url}/ok", headers={"Host": host}, timeout=10).status_code == 200


async def test_a_client_may_add_review_points_never_remove_them(default_server: Server) -> None:
    """The run that acted without approval asked for ``high_risk_tools: false``: refused at once,
    in a run's context or written into a paused thread's stored settings; stricter is fine."""
    from langgraph_sdk import get_client

    client = get_client(url=default_server.url, headers=default_server.headers, timeout=RUN_TIMEOUT_S)
    for review in ({"high_risk_tools": False}, {"plan": False}, {"plan": 0}, {"high_risk_tools": "false"}):
        thread = await client.threads.create()
        errors = [p.data async for p in client.runs.stream(
            thread["thread_id"], ASSISTANT, input={"goal": "Refund order O1001 for customer C001."},
            context={"model": "test", "review": review}, stream_mode=["updates"]) if p.event == "error"]
        assert errors and errors[0]["error"] == "ConfigError", (review, errors)
        assert "cannot be turned off by a client run" in errors[0]["message"]
        assert f"review.{next(iter(review))}" in errors[0]["message"]
        assert "\n" not in errors[0]["message"]
        state = await client.threads.get_state(thread["thread_id"])
        assert not state["values"].get("tasks") and not state["values"].get("results")

    # Stricter: an extra pause on the answer; the run pauses for its plan as configured.
    thread = await client.threads.create()
    async for part in client.runs.stream(thread["thread_id"], ASSISTANT, input={"goal": "Name two rivers."},
                                         context={"model": "test", "review": {"final_answer": True}}):
        assert part.event != "error", part.data
    state = await client.threads.get_state(thread["thread_id"])
    assert state["interrupts"] and state["interrupts"][0]["value"]["type"] == "plan_review"

    # A client writes review-off settings into a paused thread and goes on past the pause
    # (a command's update, as a fork with a change does): refused; nothing ran.
    tid, _ = paused_thread(default_server)
    errors = [p.data async for p in client.runs.stream(tid, ASSISTANT, command={
        "update": {"run_settings": {"model": "test", "review": {"plan": False, "high_risk_tools": False}}},
        "goto": "dispatch"}, stream_mode=["updates"]) if p.event == "error"]
    assert errors and "cannot be turned off by a client run" in errors[0]["message"], errors
    state = await client.threads.get_state(tid)
    assert not state["values"].get("results")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[str]:
    """A harmless-looking page on another loopback port (another origin)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>cat pictures</title><p>cats</p>")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_in_a_browser_another_origin_cannot_read_or_answer_while_token_clients_can(
    driver: Path, default_server: Server, attacker_site: str, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tid, interrupt_id = paused_thread(default_server)
    args = {"attacker": attacker_site, "target": default_server.url, "threadId": tid, "interruptId": interrupt_id,
            "token": default_server.token, "chromium": str(CHROMIUM), "userDataDir": str(tmp_path / "profile")}
    proc = subprocess.run(["node", str(DRIVER_DIR / "cross_origin.mjs"), json.dumps(args)], cwd=DRIVER_DIR,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in out, out.get("error")

    # The page read nothing: CORS reads fail outright; no-cors answers are opaque (nothing readable).
    attempts = out["attempts"]
    for name in ("search_json", "search_plain", "state", "resume_plain"):
        assert "error" in attempts[name], (name, attempts[name])
    for name in ("resume_plain_no_cors", "resume_form_no_cors", "resume_untyped_no_cors"):
        assert attempts[name].get("type") == "opaque" and not attempts[name]["readable"], (name, attempts[name])
    # ... and answered nothing: the pause is still pending, no task ran.
    assert still_paused(default_server, tid, interrupt_id)

    # The dashboard, at the printed address, shows the thread waiting; the token left the
    # address bar for this tab's storage and no request carried it in a URL.
    dashboard = out["dashboard"]
    assert dashboard["conn"] == "connected" and "waiting" in dashboard["row"], dashboard
    assert dashboard["address"].endswith("/dashboard/") and default_server.token not in dashboard["address"]
    assert dashboard["stored"] == ["orchestrator.token"]
    assert not any(default_server.token in r for r in out["requests"])

    # The CLI's --url answers the same pause with the token (as a user exports it)...
    from core.review import ReviewDecision
    from orchestrator.cli.answers import Requested
    from orchestrator.cli.remote import resume_remote

    monkeypatch.setenv("LANGGRAPH_API_KEY", default_server.token)
    done = await resume_remote(default_server.url, tid, [Requested(interrupt_id, ReviewDecision("approve"))],
                               as_json=True, interactive=False)
    for _ in range(8):  # the test model's plan may act: each action waits for its own approval
        if done["status"] != "interrupted":
            break
        assert all(i["value"]["type"] == "tool_approval" for i in done["interrupts"]), done["interrupts"]
        answers = [Requested(i["id"], ReviewDecision("approve")) for i in done["interrupts"]]
        done = await resume_remote(default_server.url, tid, answers, as_json=True, interactive=False)
    assert done["status"] == "completed", done
    # ... and the Python SDK example, run where make serve ran, finds the token file itself.
    env = {k: v for k, v in clean_env().items() if k != "LANGGRAPH_API_KEY"}
    example = subprocess.run([sys.executable, "examples/sdk_client.py", "--url", default_server.url, "--model", "test"],
                             cwd=default_server.cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S * 2, env=env)
    assert example.returncode == 0, example.stderr[-2000:]
    assert "status: completed" in example.stderr
    # Without the token, the same example is refused.
    refused = subprocess.run([sys.executable, os.path.abspath(default_server.cwd / "examples" / "sdk_client.py"),
                              "--url", default_server.url, "--model", "test"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: the server refused the token (401)"), \
        refused.stderr[-1000:]
