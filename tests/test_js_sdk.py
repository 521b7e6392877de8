"""The LangGraph JavaScript SDK, a client no one here wrote, against the server ``make serve`` runs.

The test installs ``@langchain/langgraph-sdk`` with npm into a temporary folder and runs
``tests/js/sdk_flow.mjs`` with the machine's Node.js: a thread, a streamed run, the plan
review answered with an HITL edit, the tool approvals it leads to answered by id, the
history, and a fork. The SDK finds the server's token in ``LANGGRAPH_API_KEY``, its own
variable. The README's JS example (``examples/sdk_client.mjs``) runs too, from the
repository ``make serve`` ran in, where it finds the token file. Skipped, with the reason,
where ``node`` or ``npm`` is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server_harness import Server, token_for

pytestmark = pytest.mark.server

SDK = "@langchain/langgraph-sdk@1.15.0"
SCRIPT = Path(__file__).parent / "js" / "sdk_flow.mjs"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sdk_client.mjs"


@pytest.fixture(scope="module")
def js_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the JS SDK installed and the flow script beside it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed")
    folder = tmp_path_factory.mktemp("js-sdk")
    (folder / "package.json").write_text('{"name": "orchestrator-js-test", "private": true, "type": "module"}')
    proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", SDK], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"npm could not install {SDK}: {proc.stderr.strip()[-300:]}")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    return folder


def run_sdk_flow(js_client: Path, url: str, token: str | None = None) -> dict[str, Any]:
    """Run the JS client's flow against the server at ``url``; its final JSON line."""
    env = {"PATH": os.environ["PATH"], "ORCH_URL": url, **({"LANGGRAPH_API_KEY": token} if token else {})}
    proc = subprocess.run(["node", SCRIPT.name], cwd=js_client, capture_output=True, text=True,
                          timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_js_sdk_drives_a_run_with_reviews_history_and_a_fork(js_client: Path, readme_server: Server) -> None:
    out = run_sdk_flow(js_client, readme_server.url, token_for(readme_server.url))
    assert out["kinds"][0] == "plan_review" and out["plan_action"] == "plan"
    assert "planning" in out["events"] and "task_finished" in out["events"]
    # The edited plan ran, and its refund waited for the approval the client gave.
    assert out["tasks"] == [f"Issue a refund for order O-200{i} and update ticket T-20{i}." for i in range(1, 7)]
    assert out["status"] == "completed" and out["answer"].strip()
    assert out["last_message"]["type"] == "ai" and out["last_message"]["content"] == out["answer"]
    assert out["tool_requests"], "the refund task asked for no approval"
    for request in out["tool_requests"]:
        assert request["name"] in ("issue_refund", "update_ticket")
        assert f"wants to run {request['name']}" in request["description"]
    assert set(out["kinds"][1:]) <= {"tool_approval"}
    assert out["history_length"] > 4
    assert out["fork_source"] == "fork" and out["fork_next"] == ["dispatch"]


def test_js_sdk_example_finds_the_token_and_completes(js_client: Path, readme_server: Server) -> None:
    """``examples/sdk_client.mjs`` from the server's directory: no variable set, the token file."""
    env = {"PATH": os.environ["PATH"]}
    example = readme_server.cwd / "examples" / EXAMPLE.name
    # Node resolves an ES module's imports from the module's folder: link the installed SDK there.
    link = readme_server.cwd / "examples" / "node_modules"
    if not link.exists():
        link.symlink_to(js_client / "node_modules")
    proc = subprocess.run(["node", str(example), "--url", readme_server.url, "--model", "test"],
                          cwd=readme_server.cwd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "plan_review" in proc.stderr and "status: completed" in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.strip()
