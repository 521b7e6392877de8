"""The dashboard in a real browser: Debian's chromium, driven by playwright-core.

A ``langgraph dev`` server of its own (a free port, a temporary working directory and data
dir) serves the page at ``/dashboard/`` next to the API. ``tests/dashboard/driver.mjs`` opens
it and does what a user would: starts the customer-service run on the test model, watches the
task graph and the timeline change while tasks run, approves the plan and then the refund
from the page, and waits for the run to complete. This test then checks what the driver saw,
that the browser asked nothing of any host but loopback, and that the customer database holds
exactly one refund. Screenshots of each step are kept (the path is printed; set
``DASHBOARD_SCREENSHOTS`` to copy them to a directory).

The server's graph is the real supervisor with the test model's choices scripted
(``tests/fixtures/dashboard_graph.py``): unscripted, the test model picks tools at random.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and node + npm; the test set-up
installs the pinned ``playwright-core`` with ``npm ci`` (no browser download) and skips, saying
why, when the browser or node is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.server_token import ensure_token
from tests.server_harness import auth_headers
from tests.test_server import LANGGRAPH, _free_port, _stop, _tail, _wait_ready

REPO = Path(__file__).resolve().parents[1]
DRIVER_DIR = REPO / "tests" / "dashboard"
FIXTURE = REPO / "tests" / "fixtures" / "dashboard_graph.py"
CHROMIUM = Path(os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium"))
GOAL = ("Customer C001 asks for a refund of order O1001 because it arrived damaged. "
        "Check the policy and handle it.")
DRIVER_TIMEOUT_S = 150
TASKS = {"policy", "customer", "refund", "reply"}
"""The scripted plan's tasks (tests/fixtures/dashboard_graph.py)."""
TOOL_MODE = '[models.test]\nprovider = "test"\nmodel = "test"\ntool_mode = "structured"\n'
"""Structured agent steps: the scripted team answers the AgentStep schema."""


def _node() -> str:
    node = shutil.which("node")
    if not node:
        pytest.skip("node is needed for the dashboard's own tests (apt-get install -y nodejs)")
    return node


def test_page_logic(tmp_path: Path) -> None:
    """model.js and the event-stream reader, under node's own test runner."""
    done = subprocess.run([_node(), "--test", str(DRIVER_DIR / "model.test.mjs")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 10" in done.stdout, done.stdout[-1000:]


def test_page_totals_match_the_run_metrics() -> None:
    """The page sums tokens, cost, calls, cache hits and retries as core/usage.run_metrics does."""
    from core.usage import run_metrics

    state = {
        "started_at": 1000.0, "finished_at": 1012.5, "status": "completed", "tasks": [{"id": "a"}, {"id": "b"}],
        "results": {
            "a": {"status": "done", "metrics": {"tokens_in": 120, "tokens_out": 30, "cost_usd": 0.0125,
                                               "model_calls": 3, "retries": 2, "cache_hit": False,
                                               "started_at": 1001.0, "ended_at": 1004.0}},
            "b": {"status": "failed", "metrics": {"tokens_in": 7, "tokens_out": 0, "cost_usd": 0.0,
                                                 "model_calls": 0, "cache_hit": True, "ended_at": 1005.0}},
            "c": {"status": "skipped"},
        },
        "usage": [{"tokens_in": 50, "tokens_out": 10, "cost_usd": 0.001, "model_calls": 1}],
    }
    script = ("import { runMetrics } from './dashboard/js/model.js';"
              f"console.log(JSON.stringify(runMetrics({json.dumps(state)})));")
    done = subprocess.run([_node(), "--input-type=module", "-e", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    expected = run_metrics(state)
    for key in ("tasks_total", "tasks_completed", "tasks_failed", "tasks_skipped", "tokens_in", "tokens_out",
                "tokens", "model_calls", "cache_hits", "retries"):
        assert page[key] == expected[key], key
    assert page["cost_usd"] == pytest.approx(expected["cost_usd"])
    assert page["wall_s"] == pytest.approx(expected["latency_s"])


@pytest.fixture(scope="module")
def driver() -> Path:
    """The browser driver with playwright-core installed (``npm ci``, no browser download)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (or set DASHBOARD_CHROMIUM)")
    _node()
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is needed to install playwright-core (apt-get install -y npm)")
    if not (DRIVER_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=DRIVER_DIR,
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        )
        if done.returncode != 0:
            pytest.skip(f"npm ci of playwright-core failed (is the npm registry reachable?):\n{done.stderr[-800:]}")
    return DRIVER_DIR / "driver.mjs"


def _config(workdir: Path) -> Path:
    """langgraph.json for the test server: the repository's http app, the scripted graph."""
    config = json.loads((REPO / "langgraph.json").read_text())
    served = {
        "dependencies": [str(REPO)],
        "graphs": {"orchestrator": f"{FIXTURE}:graph"},
        "checkpointer": {"path": f"{FIXTURE}:checkpointer"},
        "http": config["http"],
        "auth": {**config["auth"], "path": str(REPO / config["auth"]["path"])},
        "env": {},
    }
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(served, indent=2))
    return path


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A dev server serving the dashboard; yields (base URL, data dir). Its token is in
    ``<data dir>/server-token`` (made here, as ``make serve`` does)."""
    if not LANGGRAPH.exists():
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[dev]')")
    workdir = tmp_path_factory.mktemp("dashboard-server")
    (workdir / "orchestrator.toml").write_text(TOOL_MODE)
    data = workdir / "data"
    ensure_token(data / "server-token")
    log = workdir / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "ORCHESTRATOR_MODEL": "test",
        "ORCHESTRATOR_DATA_DIR": str(data),
    }
    env.pop("ORCHESTRATOR_CONFIG", None)
    command = [str(LANGGRAPH), "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser",
               "--no-reload", "--n-jobs-per-worker", "8", "--config", str(_config(workdir))]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = _wait_ready(proc, log, port)
        yield url, data
    finally:
        _stop(proc)
    log_text = log.read_text(errors="replace")
    assert "BlockingError" not in log_text, _tail(log, 60)
    assert (data / "server-token").read_text().strip() not in log_text, "the token reached the server's log"


@pytest.mark.server
def test_the_page_is_served_offline(dashboard_server: tuple[str, Path]) -> None:
    url, _ = dashboard_server
    page = httpx.get(f"{url}/dashboard", follow_redirects=True, timeout=10)
    assert page.status_code == 200 and str(page.url).endswith("/dashboard/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="js/app.js">' in page.text
    for asset in ("js/app.js", "js/api.js", "js/model.js", "js/views.js", "js/dom.js", "style.css"):
        response = httpx.get(f"{url}/dashboard/{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in response.text, asset
    # Nothing outside dashboard/ (httpx would normalise a literal "..", so it is encoded).
    for escape in ("%2e%2e/pyproject.toml", "%2e%2e%2forchestrator/dashboard.py", "..%2f..%2fREADME.md"):
        assert httpx.get(f"{url}/dashboard/{escape}", timeout=10).status_code == 404, escape
    assert httpx.get(f"{url}/ok", timeout=10).status_code == 200  # the API is still there


def _refunds(data: Path, order: str) -> int:
    with sqlite3.connect(data / "customer_service.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (order,)).fetchone()[0])


@pytest.mark.server
def test_run_watch_approve_and_complete_in_the_browser(
    driver: Path, dashboard_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, data = dashboard_server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    token = (data / "server-token").read_text().strip()
    args = {"url": url, "outDir": str(shots), "goal": GOAL, "chromium": str(CHROMIUM),
            "userDataDir": str(tmp_path / "chromium-profile"), "token": token}
    proc = subprocess.run(["node", str(driver), json.dumps(args)], cwd=DRIVER_DIR, capture_output=True,
                          text=True, timeout=DRIVER_TIMEOUT_S)
    print(f"dashboard screenshots: {shots}", file=sys.stderr)
    assert proc.stdout.strip(), f"the driver printed nothing:\n{proc.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    (shots / "report.json").write_text(json.dumps(report, indent=1))  # what the driver saw, for a failure
    print(f"driver report: {shots / 'report.json'}", file=sys.stderr)
    keep = os.environ.get("DASHBOARD_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
    steps = {s["name"]: s for s in report["steps"]}

    # Nothing but loopback, and nothing went wrong in the page.
    assert report["offsite"] == [], report["offsite"]
    assert all("//127.0.0.1:" in r for r in report["requests"]), report["requests"]
    assert not report["console"], report["console"]
    assert report["ok"], report.get("error")
    # The token came in the address's fragment and left it at once; no request carried it in its URL.
    assert token not in steps["opened"]["address"] and steps["opened"]["address"].endswith("/dashboard/")
    assert not any(token in r for r in report["requests"])

    # The plan review showed the plan; the graph drew its four tasks, all pending.
    # (Either the graph's own plan_review card or the generic one for LangChain's HITL shape.)
    assert steps["plan_review"]["kind"] in ("plan_review", "hitl")
    assert steps["plan_review"]["nodes"] == dict.fromkeys(TASKS, "pending")
    assert "Plan review" in steps["plan_card"]["text"]
    assert all(f"{t} " in steps["plan_card"]["text"] for t in TASKS), steps["plan_card"]["text"]

    # While tasks ran, the graph and the timeline changed: the first two tasks in parallel,
    # then each later one; every task was seen running before it was seen done.
    views = [s["view"] for s in report["samples"]]
    # (Their two task_started events reach the page one after the other: some view, not
    # necessarily the first with a running task, shows both running.)
    assert "running" in steps["running"]["nodes"].values()
    assert any(v["nodes"].get("policy") == v["nodes"].get("customer") == "running" for v in views), [
        (v["nodes"].get("policy"), v["nodes"].get("customer")) for v in views]
    for task_id in TASKS:
        seen = [v["nodes"].get(task_id) for v in views]
        assert "running" in seen and "done" in seen, (task_id, seen)
        assert seen.index("running") < seen.index("done"), (task_id, seen)
        bars = [v["bars"].get(task_id) for v in views]
        assert "running" in bars and bars[-1] == "done", (task_id, bars)
    bar_counts = [len(v["bars"]) for v in views]
    assert bar_counts[0] == 0 and max(bar_counts) == len(TASKS)

    # The refund waited for approval, showing the tool and its arguments, and ran once.
    assert steps["tool_approval"]["tool"] == "issue_refund"
    assert json.loads(steps["tool_approval"]["args"]) == {"order_id": "O1001", "amount": 129, "reason": "arrived damaged",
                                                          "acting_for": "C001"}  # the request's customer
    assert steps["tool_approval"]["nodes"]["refund"] == "running"
    assert _refunds(data, "O1001") == 1

    # Completed: every task done, the answer attributed to its tasks, the usage shown.
    assert steps["completed"]["nodes"] == dict.fromkeys(TASKS, "done")
    assert "refund of $129.00" in steps["answer"]["answer"]
    assert steps["answer"]["attributions"] == len(TASKS)
    assert "4/4 done" in steps["answer"]["metrics"]
    detail = steps["task_detail"]["text"]
    assert "refund · support" in detail and "model test" in detail and "issue_refund" in detail
    assert steps["history"]["checkpoints"] >= 10 and steps["history"]["forkable"] >= 1
    assert steps["history"]["threads"] == 1
    assert len(report["screenshots"]) == 9 and all(Path(p).stat().st_size > 10_000 for p in report["screenshots"])

    # A fork from the checkpoint after the plan approval ran again on a new branch; the
    # refund was not issued twice (the task's result came from the result cache).
    assert "fork" in steps["fork_done"]["sources"]
    assert views[-1]["waiting"] == "Nothing waits for you." and views[-1]["head"] == "—"
    assert steps["fork_done"]["nodes"] == dict.fromkeys(TASKS, "done")
    assert _refunds(data, "O1001") == 1

    # Interrupts in LangChain's HITL shape render from their value; each card resumes its own
    # interrupt id; any other shape shows its raw value and takes a raw resume value.
    assert steps["hitl"]["kinds"] == ["hitl", "hitl", "raw"]
    assert steps["hitl"]["rejectButtons"] == ["Approve", "Reject"]
    assert steps["hitl"]["rawShown"] == "Pick a colour"
    assert steps["hitl"]["resumes"] == [
        {"id": "hitl-edit", "value": {"decisions": [
            {"type": "edit", "edited_action": {"name": "issue_refund", "args": {"order_id": "O1002", "amount": 5}}}]}},
        {"id": "hitl-reject", "value": {"decisions": [{"type": "reject", "message": "too much"}]}},
        {"id": "raw-1", "value": "blue"},
    ]

    # The server agrees with what the page showed.
    thread = httpx.post(f"{url}/threads/search", json={"limit": 1}, timeout=10,
                        headers=auth_headers(token)).json()[0]
    assert thread["values"]["status"] == "completed" and thread["status"] == "idle"
    # The form's settings went as the run's context, which the thread keeps for its resumes.
    assert thread["values"]["run_settings"] == {"model": "test", "review": {
        "plan": True, "high_risk_tools": True, "final_answer": False, "failures": False}}
    assert {tid: r["status"] for tid, r in thread["values"]["results"].items()} == dict.fromkeys(TASKS, "done")
