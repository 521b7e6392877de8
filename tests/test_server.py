"""The orchestrator behind ``langgraph dev``, driven through ``langgraph_sdk`` with the test model.

One dev server for the session (a free port, a temporary working directory and data dir,
the SQLite checkpointer from ``langgraph.json``), then every client-side step: stream a run,
answer the plan review (approve, edit, reject), read state and history, fork and replay,
per-run settings on one server, the CLI's remote side, the example client, and 20
concurrent threads that must not see each other's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).parent / "langgraph"
ASSISTANT = "orchestrator"
STARTUP_TIMEOUT_S = 45.0
RUN_TIMEOUT_S = 30.0
NO_REVIEW = {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False}
"""Review settings for runs that must finish without pausing."""
PLAN_ONLY = {"plan": True, "high_risk_tools": False, "final_answer": False, "failures": False}
"""Review settings for runs that pause only for the plan."""


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _absolute(spec: str) -> str:
    """A ``./path.py:name`` spec from langgraph.json, resolved against the repository."""
    if spec.startswith("./"):
        return str(REPO / spec[2:])
    return spec


def _server_config(workdir: Path) -> Path:
    """The repository's langgraph.json with its relative paths made absolute.

    The server then runs in ``workdir``: its ``.langgraph_api`` state and any relative
    ``data_dir`` stay out of the repository, and several sessions can run at once.
    """
    config = json.loads((REPO / "langgraph.json").read_text())
    config["dependencies"] = [str(REPO / d) if d in (".", "./") else d for d in config["dependencies"]]
    config["graphs"] = {
        name: _absolute(spec) if isinstance(spec, str) else {**spec, "path": _absolute(spec["path"])}
        for name, spec in config["graphs"].items()
    }
    if config.get("checkpointer", {}).get("path"):
        config["checkpointer"]["path"] = _absolute(config["checkpointer"]["path"])
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_API_URL = re.compile(r"API:\s*(http://[\w.\-]+:\d+)")


def _announced_url(log: Path) -> str | None:
    """The URL the server says it listens on (it moves to another port if ours was taken)."""
    match = _API_URL.search(_ANSI.sub("", log.read_text(errors="replace")))
    return match.group(1) if match else None


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(_ANSI.sub("", log.read_text(errors="replace")).splitlines()[-lines:])


@dataclass(frozen=True)
class Server:
    """A running dev server: where it answers and where it logs."""

    url: str
    log: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Start ``langgraph dev`` on a free port for the session; always stop it."""
    if not LANGGRAPH.exists() or importlib.util.find_spec("langgraph_api") is None:
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[dev]')")
    workdir = tmp_path_factory.mktemp("langgraph-server")
    config = _server_config(workdir)
    log = workdir / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "ORCHESTRATOR_MODEL": "test",
        "ORCHESTRATOR_DATA_DIR": str(workdir / "data"),
    }
    env.pop("ORCHESTRATOR_CONFIG", None)
    command = [
        str(LANGGRAPH), "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser",
        "--no-reload", "--n-jobs-per-worker", "32", "--config", str(config),
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        yield Server(url=_wait_ready(proc, log, port), log=log)
    finally:
        _stop(proc)


@pytest.fixture
def server_url(server: Server) -> str:
    """The dev server's base URL."""
    return server.url


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, port: int) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{_tail(log)}")
        url = _announced_url(log) or f"http://127.0.0.1:{port}"
        try:
            if httpx.get(f"{url}/ok", timeout=1.0).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev did not answer within {STARTUP_TIMEOUT_S:.0f}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server we started (its own process group), escalating if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# -- client helpers --------------------------------------------------------------------------


def client_for(url: str) -> Any:
    from langgraph_sdk import get_client

    return get_client(url=url, timeout=RUN_TIMEOUT_S)


def settings(**overrides: Any) -> dict[str, Any]:
    """A run's context carrying setting overrides (what a client sends, once per thread)."""
    return {"context": {"model": "test", **overrides}}


async def stream(client: Any, thread_id: str, **kwargs: Any) -> dict[str, list[Any]]:
    """Stream one run; return the stream's payloads grouped by event name."""
    kwargs.setdefault("stream_mode", ["updates", "custom"])
    events: dict[str, list[Any]] = {}
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(thread_id, ASSISTANT, **kwargs):
            events.setdefault(part.event, []).append(part.data)
    assert "error" not in events, events["error"]
    return events


def task_keys(tasks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A plan's tasks as (id, instruction): what stays fixed when escalation reassigns agents."""
    return [(t["id"], t["instruction"]) for t in tasks]


def only_interrupt(state: dict[str, Any]) -> dict[str, Any]:
    """The thread's single pending interrupt."""
    assert len(state["interrupts"]) == 1, state["interrupts"]
    return dict(state["interrupts"][0])


async def start_paused(client: Any, goal: str) -> tuple[str, dict[str, Any], dict[str, list[Any]]]:
    """A new thread whose run has stopped at the plan review: (thread id, interrupt, events)."""
    thread = await client.threads.create(metadata={"test": "server"})
    events = await stream(client, thread["thread_id"], input={"goal": goal},
                          **settings(review=PLAN_ONLY))
    state = await client.threads.get_state(thread["thread_id"])
    pending = only_interrupt(state)
    assert pending["value"]["type"] == "plan_review"
    return thread["thread_id"], pending, events


# -- the tests -------------------------------------------------------------------------------


async def test_stream_pauses_for_plan_review_then_approve_completes(server_url: str) -> None:
    client = client_for(server_url)
    goal = "Explain how tides work, with one worked example."
    thread_id, pending, events = await start_paused(client, goal)

    progress = [e["event"] for e in events.get("custom", [])]
    assert "planning" in progress and "plan" in progress, progress
    updates = events.get("updates", [])
    assert any("plan" in u for u in updates), updates
    assert any("__interrupt__" in u for u in updates), updates
    assert pending["value"]["goal"] == goal
    assert pending["value"]["tasks"], pending

    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]

    events = await stream(client, thread_id, command={"resume": {pending["id"]: {"action": "approve"}}},
                          **settings(review=PLAN_ONLY),
                          stream_mode=["updates", "custom", "messages-tuple"])
    progress = [e["event"] for e in events.get("custom", [])]
    assert "task_started" in progress and "task_finished" in progress, progress
    assert "synthesizing" in progress, progress
    assert events.get("messages"), "no chat model messages were streamed"

    final = await client.threads.get_state(thread_id)
    values = final["values"]
    assert final["next"] == [] and not final["interrupts"]
    assert values["status"] == "completed", values.get("status")
    assert values["goal"] == goal
    assert values["answer"].strip()
    assert set(values["results"]) >= {t["id"] for t in values["tasks"]}


async def test_edit_replaces_the_plan(server_url: str) -> None:
    client = client_for(server_url)
    thread_id, pending, _ = await start_paused(client, "Summarise the causes of inflation.")
    edited: list[dict[str, Any]] = [
        {"id": "t1", "agent": "researcher", "instruction": "List three causes of inflation."},
        {"id": "t2", "agent": "writer", "instruction": "Write a short summary.", "depends_on": ["t1"]},
    ]
    # Adaptive replanning off for the rest of the run, so the edited plan is the final one.
    await stream(client, thread_id, command={"resume": {pending["id"]: {"action": "edit", "tasks": edited}}},
                 **settings(review=PLAN_ONLY, adaptive_replanning=False))
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "completed"
    assert [(t["id"], t["agent"], t["instruction"]) for t in values["tasks"]] == [
        (t["id"], t["agent"], t["instruction"]) for t in edited
    ]
    assert [v["reason"] for v in values["plan_versions"]][-1].startswith("edited by a human")
    assert task_keys(values["plan_versions"][-1]["tasks"]) == task_keys(edited)
    assert {tid: r["status"] for tid, r in values["results"].items()} == {"t1": "done", "t2": "done"}


async def test_reject_replans_with_the_feedback(server_url: str) -> None:
    client = client_for(server_url)
    thread_id, pending, _ = await start_paused(client, "Compare two sorting algorithms.")
    await stream(client, thread_id,
                 command={"resume": {pending["id"]: {"action": "reject", "feedback": "use fewer tasks"}}},
                 **settings(review=PLAN_ONLY))
    state = await client.threads.get_state(thread_id)
    again = only_interrupt(state)
    assert again["value"]["type"] == "plan_review"
    assert again["value"]["version"] == 2
    assert again["id"] != pending["id"]
    await stream(client, thread_id, command={"resume": {again["id"]: {"action": "approve"}}},
                 **settings(review=PLAN_ONLY))
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "completed"
    assert len(values["plan_versions"]) == 2


async def test_several_pending_interrupts_resume_by_id(server_url: str) -> None:
    """Parallel support tasks each pause before a side effect; one resume map answers them all."""
    from core.review import ReviewDecision, resume_value

    client = client_for(server_url)
    review = {**PLAN_ONLY, "high_risk_tools": True}
    config = settings(review=review, limits={"max_concurrency": 6})
    thread_id, pending, _ = await start_paused(client, "Handle the refund requests in the queue.")
    tasks = [
        {"id": f"t{i}", "agent": "support", "instruction": f"Issue a refund for order O-100{i} and update ticket T-{i}."}
        for i in range(1, 7)
    ]
    command: dict[str, Any] = {"resume": {pending["id"]: {"action": "edit", "tasks": tasks}}}
    most_at_once, answered = 0, 0
    for _ in range(12):
        await stream(client, thread_id, command=command, **config)
        state = await client.threads.get_state(thread_id)
        if not state["interrupts"]:
            break
        assert {i["value"]["type"] for i in state["interrupts"]} == {"tool_approval"}
        most_at_once = max(most_at_once, len(state["interrupts"]))
        # Approve every other side effect and refuse the rest, each by its interrupt id.
        decisions = [ReviewDecision("approve") if n % 2 == 0 else ReviewDecision("reject", text="not now")
                     for n in range(len(state["interrupts"]))]
        command = {"resume": {i["id"]: resume_value(i["value"], d)
                              for i, d in zip(state["interrupts"], decisions, strict=True)}}
        answered += len(state["interrupts"])
    values = state["values"]
    assert not state["interrupts"] and values["status"] == "completed", values.get("status")
    assert most_at_once >= 2, "no two tasks were waiting for approval at the same time"
    assert answered >= most_at_once and set(values["results"]) == {t["id"] for t in tasks}


async def test_history_fork_and_replay(server_url: str) -> None:
    client = client_for(server_url)
    goal = "Describe the water cycle."
    thread_id, pending, _ = await start_paused(client, goal)
    await stream(client, thread_id, command={"resume": {pending["id"]: {"action": "approve"}}},
                 **settings(review=PLAN_ONLY))
    final = await client.threads.get_state(thread_id)
    final_id = final["checkpoint"]["checkpoint_id"]
    history = await client.threads.get_history(thread_id, limit=200)
    assert history[0]["checkpoint"]["checkpoint_id"] == final_id
    assert history[-1]["next"] == ["__start__"]
    assert [h["next"] for h in history[-3:]] == [["review_plan"], ["plan"], ["__start__"]]
    # The checkpoint just after the plan was approved: next is dispatch, nothing has run yet.
    approved = next(h for h in reversed(history) if h["next"] == ["dispatch"])
    approved_id = approved["checkpoint"]["checkpoint_id"]
    assert not approved["values"].get("results")
    plan = task_keys(approved["values"]["tasks"])

    # Replay: a run from that checkpoint executes the tasks again, on a new branch.
    events = await stream(client, thread_id, input=None, checkpoint_id=approved_id,
                          **settings(review=PLAN_ONLY))
    assert "task_started" in [e["event"] for e in events.get("custom", [])]
    replayed = await client.threads.get_state(thread_id)
    assert replayed["checkpoint"]["checkpoint_id"] != final_id
    assert task_keys(replayed["values"]["tasks"]) == plan and replayed["values"]["answer"].strip()

    # Fork: copy that checkpoint as a new branch head (threads.update_state); a run with
    # checkpoint_id=copy_id would continue it exactly like the replay above.
    copy = await client.threads.update_state(thread_id, None, checkpoint_id=approved_id, as_node="__copy__")
    copy_id = copy["checkpoint"]["checkpoint_id"]
    branch = await client.threads.get_state(thread_id, checkpoint_id=copy_id)
    assert branch["metadata"]["source"] == "fork"
    assert branch["next"] == ["dispatch"] and task_keys(branch["values"]["tasks"]) == plan
    assert not branch["values"].get("results")

    # Fork with a change: a run from the checkpoint that updates the plan and goes on.
    one_task = [{"id": "t1", "agent": "writer", "instruction": "Describe the water cycle in one paragraph."}]
    await stream(client, thread_id, checkpoint_id=approved_id,
                 command={"update": {"tasks": one_task}, "goto": "dispatch"}, **settings(review=PLAN_ONLY))
    forked = await client.threads.get_state(thread_id)
    assert forked["values"]["status"] == "completed"
    assert [t["instruction"] for t in forked["values"]["tasks"]] == [one_task[0]["instruction"]]
    assert list(forked["values"]["results"]) == ["t1"]
    assert forked["values"]["goal"] == goal
    fork_root = next(h for h in await client.threads.get_history(thread_id, limit=20)
                     if h["metadata"].get("source") == "fork")
    assert fork_root["parent_checkpoint"]["checkpoint_id"] == approved_id

    # Every branch is still there: the original answer is unchanged at its checkpoint.
    original = await client.threads.get_state(thread_id, checkpoint_id=final_id)
    assert original["values"]["answer"] == final["values"]["answer"]
    assert task_keys(original["values"]["tasks"]) == task_keys(final["values"]["tasks"])


async def test_one_server_many_configurations(server_url: str) -> None:
    """Review points and budgets come from each run's configurable, not from the server."""
    client = client_for(server_url)
    goal = "Plan a three-day trip to Lisbon."
    paused = await client.threads.create()
    budgeted = await client.threads.create()
    await asyncio.gather(
        stream(client, paused["thread_id"], input={"goal": goal}, **settings(review=PLAN_ONLY)),
        stream(client, budgeted["thread_id"], input={"goal": goal},
               **settings(review=NO_REVIEW, budgets={"run_tokens": 1})),
    )
    paused_state = await client.threads.get_state(paused["thread_id"])
    assert only_interrupt(paused_state)["value"]["type"] == "plan_review"
    assert not paused_state["values"].get("stop_reason")

    budgeted_state = await client.threads.get_state(budgeted["thread_id"])
    assert not budgeted_state["interrupts"] and budgeted_state["next"] == []
    assert budgeted_state["values"]["stop_reason"].startswith("budget: run_tokens"), budgeted_state["values"]
    assert not budgeted_state["values"].get("results")

    bad = await client.threads.create()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        parts = [p async for p in client.runs.stream(
            bad["thread_id"], ASSISTANT, input={"goal": goal}, **settings(model="no-such-model"),
        )]
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and "no-such-model" in json.dumps(errors), parts


async def test_remote_cli_run_and_resume(server_url: str) -> None:
    from core.review import ReviewDecision
    from orchestrator.cli.commands import print_outcome
    from orchestrator.cli.remote import resume_remote, run_remote, server_thread_id

    options = {"model": "test", "review": PLAN_ONLY}
    outcome = await run_remote(server_url, "List the planets of the solar system.", "cli-remote-1",
                               options, as_json=True, interactive=False)
    assert outcome["status"] == "interrupted"
    assert outcome["thread_id"] == "cli-remote-1"
    assert outcome["interrupts"][0]["value"]["type"] == "plan_review"
    assert f"--url {server_url}" in outcome["resume"]
    assert print_outcome(outcome, as_json=True) == 3

    done = await resume_remote(server_url, "cli-remote-1", ReviewDecision("approve"), as_json=True, interactive=False)
    assert done["status"] == "completed"
    assert done["answer"].strip()
    assert done["metrics"]["tasks_total"] > 0 and done["metrics"]["tasks_completed"] > 0
    assert print_outcome(done, as_json=True) == 0
    expected_keys = {"thread_id", "status", "goal", "plan", "plan_versions", "answer", "stop_reason",
                     "metrics", "interrupts", "checkpoint_id"}
    assert set(done) == expected_keys

    state = await client_for(server_url).threads.get_state(server_thread_id("cli-remote-1"))
    assert state["values"]["run_settings"] == options


async def test_remote_cli_interactive(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interactive: each pause is answered at the prompt and the run goes on to the end."""
    from core.review import ReviewDecision, resume_value
    from orchestrator.cli import remote

    asked: list[str] = []

    def approve_all(interrupts: Any) -> dict[str, Any]:
        asked.extend(i.value["type"] for i in interrupts)
        return {i.id: resume_value(i.value, ReviewDecision("approve")) for i in interrupts}

    monkeypatch.setattr(remote, "ask_human", approve_all)
    options = {"model": "test", "review": PLAN_ONLY}
    done = await remote.run_remote(server_url, "Outline a study plan for linear algebra.", None, options,
                                   as_json=False, interactive=True)
    assert asked == ["plan_review"]
    assert done["status"] == "completed" and done["answer"].strip()
    assert "resume" not in done


async def test_remote_cli_errors(server_url: str) -> None:
    from orchestrator.cli.commands import UsageError
    from orchestrator.cli.remote import resume_remote, run_remote

    options = {"model": "test", "review": NO_REVIEW}
    done = await run_remote(server_url, "Name three prime numbers.", None, options, as_json=True,
                            interactive=False)
    assert done["status"] == "completed"
    with pytest.raises(UsageError, match="already exists"):
        await run_remote(server_url, "again", done["thread_id"], options, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="has finished"):
        await resume_remote(server_url, done["thread_id"], None, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="no thread"):
        await resume_remote(server_url, "never-created", None, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="the goal is empty"):
        await run_remote(server_url, "  ", None, options, as_json=True, interactive=False)
    nowhere = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(UsageError, match="cannot reach"):
        await run_remote(nowhere, "goal", None, options, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="cannot reach"):
        await resume_remote(nowhere, "some-thread", None, as_json=True, interactive=False)
    assert time.monotonic() - started < 5, "an unreachable server must be reported at once"


def test_example_client(server_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "sdk_client.py"), "--url", server_url,
         "--goal", "Write a haiku about rivers."],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S * 2,
    )
    assert proc.returncode == 0, proc.stderr
    assert "plan_review" in proc.stderr
    assert proc.stdout.strip()


async def test_specialists_are_served_on_their_own(server_url: str) -> None:
    client = client_for(server_url)
    agents = ["researcher", "coder", "analyst", "writer", "reviewer", "support"]

    async def one(agent: str) -> dict[str, Any]:
        thread = await client.threads.create()
        task = {"id": "t1", "agent": agent, "instruction": "Summarise the refund policy in two sentences."}
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out = await client.runs.wait(
                thread["thread_id"], agent,
                input={"task": task, "goal": task["instruction"], "context": "", "feedback": ""},
                **settings(review=NO_REVIEW),
            )
        assert isinstance(out, dict)
        return out

    for agent, out in zip(agents, await asyncio.gather(*(one(a) for a in agents)), strict=True):
        assert out.get("error") is None and str(out.get("output", "")).strip(), (agent, out)


async def test_twenty_concurrent_threads_keep_their_own_state(server_url: str) -> None:
    """20 runs at once, every fourth with a budget that stops it: nothing crosses threads."""
    client = client_for(server_url)
    marker = "topic number {}:"
    goals = [f"Report on {marker.format(i)} the history of city {i * 7 + 3}." for i in range(20)]

    def overrides(i: int) -> dict[str, Any]:
        return {"review": NO_REVIEW, "budgets": {"run_tokens": 1}} if i % 4 == 0 else {"review": NO_REVIEW}

    async def one(i: int) -> str:
        thread = await client.threads.create(metadata={"goal": goals[i]})
        events = await stream(client, thread["thread_id"],
                              input={"goal": goals[i]},
                              **settings(**overrides(i)))
        planned = [e for e in events.get("custom", []) if e["event"] == "plan"]
        assert len(planned) == 1
        thread_plans[thread["thread_id"]] = task_keys(planned[0]["tasks"])
        return str(thread["thread_id"])

    thread_plans: dict[str, list[tuple[str, str]]] = {}
    started = time.monotonic()
    thread_ids = await asyncio.gather(*(one(i) for i in range(20)))
    elapsed = time.monotonic() - started
    assert len(set(thread_ids)) == 20

    threads = await asyncio.gather(*(client.threads.get(t) for t in thread_ids))
    states = await asyncio.gather(*(client.threads.get_state(t) for t in thread_ids))
    for i, (thread_id, thread, state) in enumerate(zip(thread_ids, threads, states, strict=True)):
        assert thread["metadata"]["goal"] == goals[i] and thread["status"] == "idle"
        values = state["values"]
        assert values["goal"] == goals[i]
        assert values["run_settings"] == {"model": "test", **overrides(i)}
        # The plan this thread streamed is the first in its plan history, and every task in
        # its state and on its blackboard comes from one of its own plan versions.
        assert task_keys(values["plan_versions"][0]["tasks"]) == thread_plans[thread_id]
        own = {key for version in values["plan_versions"] for key in task_keys(version["tasks"])}
        assert set(task_keys(values["tasks"])) <= own
        assert set(task_keys([r["task"] for r in values["results"].values()])) <= own
        # The answer restates this thread's goal (the test model echoes its prompt) and no other.
        answer = values["answer"]
        if i % 4 == 0:
            assert values["stop_reason"].startswith("budget: run_tokens"), values["stop_reason"]
            assert not values["results"]
        else:
            assert not values["stop_reason"]
            assert values["status"] == "completed", (goals[i], values.get("status"))
            assert set(values["results"]) >= {t["id"] for t in values["tasks"]}
            # A one-task plan's answer is its task's record (no synthesis call to echo it).
            own_outputs = [str(r.get("output") or "")[:60] for r in values["results"].values()]
            assert marker.format(i) in answer or any(o and o in answer for o in own_outputs), answer[:300]
        others = [marker.format(j) for j in range(20) if j != i]
        assert not [m for m in others if m in answer], answer[:300]
    assert elapsed < RUN_TIMEOUT_S


def test_no_blocking_calls_on_the_event_loop(server: Server) -> None:
    """Runs last: nothing the tests above ran made a blocking call on the server's loop."""
    log = _ANSI.sub("", server.log.read_text(errors="replace"))
    assert "BlockingError" not in log and "blocking call" not in log.lower(), _tail(server.log, 80)
