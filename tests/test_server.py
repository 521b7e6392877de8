"""The orchestrator behind ``langgraph dev``, driven through ``langgraph_sdk`` with the test model.

One dev server for the session, started as the README says (``make serve`` in a fresh copy
of the repository, default settings: the relative ``.orchestrator`` data dir), then every
client-side step: the README's example client, stream a run, answer the plan review
(approve, edit, reject) and tool approvals in LangChain's HITL shape, a chat's ``messages``
input, bad input, read state and history, fork and replay, per-run settings on one server,
the CLI's remote side, and 20 concurrent threads with mixed models and review settings that
must not see each other's state.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server_harness import (  # _free_port, _stop, _tail, _wait_ready: tests/test_dashboard.py
    LANGGRAPH,
    Server,
    _stop,  # noqa: F401
    _wait_ready,  # noqa: F401
    auth_headers,
    clean_env,
    free_port,
    log_text,
    serve,
    tail,
    token_for,
)
from tests.server_harness import free_port as _free_port  # noqa: F401
from tests.server_harness import tail as _tail  # noqa: F401

pytestmark = pytest.mark.server

ASSISTANT = "orchestrator"
RUN_TIMEOUT_S = 60.0
APPROVE = {"decisions": [{"type": "approve"}]}
"""The HITL answer that approves any pause."""
NO_REVIEW = {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False}
"""Review settings for runs that must finish without pausing."""
PLAN_ONLY = {"plan": True, "high_risk_tools": False, "final_answer": False, "failures": False}
"""Review settings for runs that pause only for the plan."""


# -- the server: started as the README says (tests/server_harness.py) -------------------------


@pytest.fixture
def server(readme_server: Server) -> Server:
    """``make serve`` in a fresh copy of the repository, default settings."""
    return readme_server


@pytest.fixture
def server_url(readme_server: Server) -> str:
    """The dev server's base URL."""
    return readme_server.url


# -- client helpers --------------------------------------------------------------------------


def client_for(url: str) -> Any:
    """An SDK client of the server at ``url``, with its token."""
    from langgraph_sdk import get_client

    return get_client(url=url, timeout=RUN_TIMEOUT_S, headers=auth_headers(token_for(url)))


@pytest.fixture
def cli_token(server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's token where the CLI looks for it (as a user exports it)."""
    token = token_for(server_url)
    monkeypatch.setenv("LANGGRAPH_API_KEY", token)
    return token


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

    # The pause is a LangChain HITL request: one action (the plan) and its allowed decisions.
    (action,) = pending["value"]["action_requests"]
    assert action["name"] == "plan" and action["args"]["tasks"] == pending["value"]["tasks"]
    assert goal in action["description"]
    assert pending["value"]["review_configs"] == [
        {"action_name": "plan", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    events = await stream(client, thread_id, command={"resume": {pending["id"]: APPROVE}},
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
    edit = {"decisions": [{"type": "edit", "edited_action": {"name": "plan", "args": {"tasks": edited}}}]}
    await stream(client, thread_id, command={"resume": {pending["id"]: edit}},
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
                 command={"resume": {pending["id"]: {"decisions": [{"type": "reject", "message": "use fewer tasks"}]}}},
                 **settings(review=PLAN_ONLY))
    state = await client.threads.get_state(thread_id)
    again = only_interrupt(state)
    assert again["value"]["type"] == "plan_review"
    assert again["value"]["version"] == 2
    assert again["id"] != pending["id"]
    # The older answer shape still works.
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
        for pause in state["interrupts"]:  # the tool, its arguments, what the agent found
            (action,) = pause["value"]["action_requests"]
            assert action["name"] == pause["value"]["tool"] and action["args"] == pause["value"]["args"]
            assert f"wants to run {action['name']}" in action["description"]
            assert pause["value"]["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
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
    await stream(client, thread_id, command={"resume": {pending["id"]: APPROVE}},
                 **settings(review=PLAN_ONLY))
    final = await client.threads.get_state(thread_id)
    final_id = final["checkpoint"]["checkpoint_id"]
    history = await client.threads.get_history(thread_id, limit=200)
    assert history[0]["checkpoint"]["checkpoint_id"] == final_id
    assert history[-1]["next"] == ["__start__"]
    assert [h["next"] for h in history[-4:]] == [["review_plan"], ["plan"], ["intake"], ["__start__"]]
    # The checkpoint just after the plan was approved: next is dispatch, nothing has run yet.
    approved = next(h for h in reversed(history) if h["next"] == ["dispatch"])
    approved_id = approved["checkpoint"]["checkpoint_id"]
    assert not approved["values"].get("results")
    plan = task_keys(approved["values"]["tasks"])

    # Replay: a run from that checkpoint executes the tasks again, on a new branch.
    # No context: the thread remembers its settings (the server's default model is the
    # embedded one, so a forgotten context would not run on the test model).
    events = await stream(client, thread_id, input=None, checkpoint_id=approved_id)
    assert "task_started" in [e["event"] for e in events.get("custom", [])]
    replayed = await client.threads.get_state(thread_id)
    assert replayed["checkpoint"]["checkpoint_id"] != final_id
    assert task_keys(replayed["values"]["tasks"]) == plan and replayed["values"]["answer"].strip()
    assert {r["metrics"]["model"] for r in replayed["values"]["results"].values()} == {"test"}

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
                 command={"update": {"tasks": one_task}, "goto": "dispatch"})
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


async def test_remote_cli_run_and_resume(server_url: str, cli_token: str) -> None:
    from core.review import ReviewDecision
    from orchestrator.cli.answers import Requested
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

    done = await resume_remote(server_url, "cli-remote-1", [Requested(None, ReviewDecision("approve"))],
                               as_json=True, interactive=False)
    assert done["status"] == "completed"
    assert done["answer"].strip()
    assert done["metrics"]["tasks_total"] > 0 and done["metrics"]["tasks_completed"] > 0
    assert print_outcome(done, as_json=True) == 0
    expected_keys = {"thread_id", "status", "goal", "plan", "plan_versions", "answer", "stop_reason",
                     "metrics", "interrupts", "checkpoint_id"}
    # diagnosis: only when a task was escalated or did not follow its spec (recovered or not)
    assert expected_keys <= set(done) <= expected_keys | {"diagnosis"}

    state = await client_for(server_url).threads.get_state(server_thread_id("cli-remote-1"))
    assert state["values"]["run_settings"] == options


async def test_remote_cli_interactive(server_url: str, cli_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
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


async def test_remote_cli_errors(server_url: str, cli_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.cli.commands import UsageError
    from orchestrator.cli.remote import resume_remote, run_remote

    options = {"model": "test", "review": NO_REVIEW}
    done = await run_remote(server_url, "Name three prime numbers.", None, options, as_json=True,
                            interactive=False)
    assert done["status"] == "completed"
    with pytest.raises(UsageError, match="already exists"):
        await run_remote(server_url, "again", done["thread_id"], options, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="has finished"):
        await resume_remote(server_url, done["thread_id"], [], as_json=True, interactive=False)
    with pytest.raises(UsageError, match="no thread"):
        await resume_remote(server_url, "never-created", [], as_json=True, interactive=False)
    with pytest.raises(UsageError, match="the goal is empty"):
        await run_remote(server_url, "  ", None, options, as_json=True, interactive=False)
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(UsageError, match="cannot reach"):
        await run_remote(nowhere, "goal", None, options, as_json=True, interactive=False)
    with pytest.raises(UsageError, match="cannot reach"):
        await resume_remote(nowhere, "some-thread", [], as_json=True, interactive=False)
    assert time.monotonic() - started < 5, "an unreachable server must be reported at once"
    monkeypatch.setenv("LANGGRAPH_API_KEY", "not-the-token")
    with pytest.raises(UsageError, match=r"refused the token \(401\): set LANGGRAPH_API_KEY"):
        await run_remote(server_url, "goal", None, options, as_json=True, interactive=False)


def test_readme_example_client(server: Server) -> None:
    """The README's SDK example, from the repository root, on the server ``make serve`` started
    (it finds the token in the file ``make serve`` made)."""
    proc = subprocess.run(
        [sys.executable, "examples/sdk_client.py", "--url", server.url, "--model", "test"],
        cwd=server.cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S * 2,
        env={k: v for k, v in clean_env().items() if k != "LANGGRAPH_API_KEY"},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "plan_review" in proc.stderr and "status: completed" in proc.stderr, proc.stderr
    assert proc.stdout.strip()
    # The default, relative data dir: in the directory the server was started in.
    data = server.cwd / ".orchestrator"
    assert (data / "server-checkpoints.sqlite").is_file()
    assert (data / "workspaces").is_dir()


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


async def test_messages_only_input_completes_with_the_answer_in_messages(server_url: str) -> None:
    """What a chat client sends: no goal, only messages; the answer comes back as an AI message."""
    client = client_for(server_url)
    thread = await client.threads.create()
    messages = [
        {"type": "human", "content": "I run a bakery in Porto."},
        {"type": "ai", "content": "Nice! How can I help?"},
        {"type": "human", "content": "Write a two-line slogan for the shop."},
    ]
    await stream(client, thread["thread_id"], input={"messages": messages}, **settings(review=NO_REVIEW))
    values = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert values["status"] == "completed"
    assert values["goal"] == "Write a two-line slogan for the shop."
    assert "bakery in Porto" in values["conversation"]  # earlier turns: context for the planner
    last = values["messages"][-1]
    assert last["type"] == "ai" and last["content"] == values["answer"] and values["answer"].strip()
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]


async def test_goal_input_also_fills_messages(server_url: str) -> None:
    client = client_for(server_url)
    thread = await client.threads.create()
    await stream(client, thread["thread_id"], input={"goal": "Name two rivers."}, **settings(review=NO_REVIEW))
    values = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert [(m["type"], m["content"]) for m in values["messages"]] == [
        ("human", "Name two rivers."), ("ai", values["answer"])]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "no goal"),
        ({"messages": [{"type": "ai", "content": "hello"}]}, "no goal"),
        ({"goal": "   "}, "the goal is empty"),
        ({"goal": "x" * 9000}, "limits.max_goal_chars"),
        ({"goal": "refund\x00order"}, "NUL"),
        ({"goal": 42}, "must be text"),
    ],
)
async def test_bad_input_fails_the_run_with_one_clear_error(server_url: str, payload: dict[str, Any],
                                                           message: str) -> None:
    client = client_for(server_url)
    thread = await client.threads.create()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        parts = [p async for p in client.runs.stream(thread["thread_id"], ASSISTANT, input=payload,
                                                     **settings(review=NO_REVIEW))]
    errors = [p.data for p in parts if p.event == "error"]
    assert len(errors) == 1 and errors[0]["error"] == "InvalidGoal", parts
    assert message in errors[0]["message"] and "\n" not in errors[0]["message"]
    values = (await client.threads.get_state(thread["thread_id"]))["values"] or {}
    assert not values.get("tasks") and not values.get("status")  # nothing planned, nothing run


async def test_a_new_goal_on_a_finished_thread_is_refused(server_url: str) -> None:
    client = client_for(server_url)
    thread = await client.threads.create()
    await stream(client, thread["thread_id"], input={"goal": "Name a planet."}, **settings(review=NO_REVIEW))
    before = (await client.threads.get_state(thread["thread_id"]))["values"]
    async with asyncio.timeout(RUN_TIMEOUT_S):
        parts = [p async for p in client.runs.stream(thread["thread_id"], ASSISTANT,
                                                     input={"goal": "Name a moon."})]
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and "start a new thread" in errors[0]["message"]
    after = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert after["answer"] == before["answer"] and after["tasks"] == before["tasks"]


async def test_settings_errors_match_the_cli_and_resume_sends_no_context(server_url: str) -> None:
    """A bad override fails with the CLI's message; a resume without a context keeps the
    thread's settings (here: a token budget that must still apply after the plan review)."""
    from agents import RunContext
    from core.settings import ConfigError

    bad = {"limits": {"max_concurrency": 0}}
    with pytest.raises(ConfigError) as cli_error:
        RunContext.build(bad)
    client = client_for(server_url)
    thread = await client.threads.create()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        parts = [p async for p in client.runs.stream(thread["thread_id"], ASSISTANT,
                                                     input={"goal": "g"}, **settings(**bad))]
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and str(cli_error.value) in errors[0]["message"], (errors, str(cli_error.value))

    thread_id, pending, _ = await start_paused(client, "Summarise the warranty policy.")
    await client.threads.get_state(thread_id)
    # No context on the resume: the thread remembers model, review points and settings.
    await stream(client, thread_id, command={"resume": {pending["id"]: APPROVE}})
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "completed" and values["run_settings"] == {"model": "test", "review": PLAN_ONLY}


async def test_twenty_concurrent_threads_keep_their_own_state(server_url: str) -> None:
    """20 runs at once with mixed models (two test-model configurations, per-role models),
    review settings (some pause for the plan and are approved) and budgets: nothing crosses
    threads, and the relative data dir causes no blocking call."""
    client = client_for(server_url)
    marker = "topic number {}:"
    goals = [f"Report on {marker.format(i)} the history of city {i * 7 + 3}." for i in range(20)]

    def overrides(i: int) -> dict[str, Any]:
        mixed: dict[str, Any] = {"review": PLAN_ONLY if i % 3 == 0 else NO_REVIEW}
        if i % 2:  # "small": a second test-model configuration the server's operator named
            mixed.update(model="small", roles={"writer": "test"})
        if i % 4 == 0:
            mixed["budgets"] = {"run_tokens": 1}
        return mixed

    async def one(i: int) -> str:
        thread = await client.threads.create(metadata={"goal": goals[i]})
        tid = str(thread["thread_id"])
        events = await stream(client, tid, input={"goal": goals[i]}, **settings(**overrides(i)))
        planned = [e for e in events.get("custom", []) if e["event"] == "plan"]
        # The supervisor may revise the plan after a round (a second plan event).
        assert planned and planned[0]["version"] == 1
        thread_plans[tid] = task_keys(planned[0]["tasks"])
        for _ in range(3):  # plan review on: approve (no context: the thread remembers)
            state = await client.threads.get_state(tid)
            if not state["interrupts"]:
                break
            await stream(client, tid, command={"resume": {p["id"]: APPROVE for p in state["interrupts"]}})
        return tid

    thread_plans: dict[str, list[tuple[str, str]]] = {}
    thread_ids = await asyncio.gather(*(one(i) for i in range(20)))
    assert len(set(thread_ids)) == 20

    threads = await asyncio.gather(*(client.threads.get(t) for t in thread_ids))
    states = await asyncio.gather(*(client.threads.get_state(t) for t in thread_ids))
    for i, (thread_id, thread, state) in enumerate(zip(thread_ids, threads, states, strict=True)):
        assert thread["metadata"]["goal"] == goals[i] and thread["status"] == "idle"
        values = state["values"]
        assert values["goal"] == goals[i] and not state["interrupts"]
        assert values["run_settings"] == {"model": "test", **overrides(i)}
        # The plan this thread streamed is the first in its plan history, and every task in
        # its state and on its blackboard comes from one of its own plan versions.
        assert task_keys(values["plan_versions"][0]["tasks"]) == thread_plans[thread_id]
        own = {key for version in values["plan_versions"] for key in task_keys(version["tasks"])}
        assert set(task_keys(values["tasks"])) <= own
        assert set(task_keys([r["task"] for r in values["results"].values()])) <= own
        # Each task ran on the model this thread configured.
        expected_models = {"small", "test-small", "test"} if i % 2 else {"test"}
        ran_on = {r["metrics"]["model"] for r in values["results"].values() if r.get("metrics", {}).get("model")}
        assert ran_on <= expected_models, (i, ran_on)
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
        assert "BlockingError" not in json.dumps(values["results"])


async def test_served_from_another_directory_with_a_relative_data_dir(tmp_path: Any, readme_server: Server) -> None:
    """``langgraph dev --config CLONE/langgraph.json`` run from elsewhere, with a relative
    ``ORCHESTRATOR_DATA_DIR``: the data dir is resolved where the server started, no blocking."""
    from langgraph_sdk import get_client

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    # langgraph-api resolves the checkpointer's "./" path against the working directory,
    # so a server started elsewhere names the files absolutely.
    config = json.loads((readme_server.cwd / "langgraph.json").read_text())
    root = str(readme_server.cwd)
    config["dependencies"] = [root]
    for spec in config["graphs"].values():
        if isinstance(spec, dict):
            spec["path"] = spec["path"].replace("./", root + "/", 1)
    config["graphs"] = {name: spec.replace("./", root + "/", 1) if isinstance(spec, str) else spec
                        for name, spec in config["graphs"].items()}
    config["checkpointer"]["path"] = config["checkpointer"]["path"].replace("./", root + "/", 1)
    config["auth"]["path"] = config["auth"]["path"].replace("./", root + "/", 1)
    if isinstance(config.get("http"), dict) and str(config["http"].get("app", "")).startswith("./"):
        config["http"]["app"] = config["http"]["app"].replace("./", root + "/", 1)
    (elsewhere / "langgraph.json").write_text(json.dumps(config))
    command = [str(LANGGRAPH), "dev", "--port", str(port), "--no-browser", "--no-reload",
               "--config", str(elsewhere / "langgraph.json")]
    env = clean_env(ORCHESTRATOR_DATA_DIR="rel-data", ORCHESTRATOR_MODEL="test",
                    ORCHESTRATOR_SERVER__CLIENTS_MAY_RELAX_REVIEW="true")
    # Started without make serve: the server makes its token itself, at startup.
    with serve(command, elsewhere, env, port, token_file=elsewhere / "rel-data" / "server-token") as other:
        client = get_client(url=other.url, timeout=RUN_TIMEOUT_S, headers=other.headers)
        thread = await client.threads.create()
        await stream(client, thread["thread_id"], input={"goal": "Describe a lighthouse."},
                     context={"review": NO_REVIEW})
        values = (await client.threads.get_state(thread["thread_id"]))["values"]
        assert values["status"] == "completed", values
        assert (elsewhere / "rel-data" / "server-checkpoints.sqlite").is_file()
        assert (elsewhere / "rel-data" / "workspaces").is_dir()
        log = log_text(other.log)
    assert "BlockingError" not in log and "blocking call" not in log.lower(), log[-3000:]


def test_no_blocking_calls_on_the_event_loop(server: Server) -> None:
    """Runs last: nothing the tests above ran made a blocking call on the server's loop."""
    log = log_text(server.log)
    assert "BlockingError" not in log and "blocking call" not in log.lower(), tail(server.log, 80)


async def test_clients_cannot_set_the_operators_settings(server_url: str) -> None:
    """A client may choose models, review and limits, but not paths, endpoints, MCP servers
    or the sandbox — neither in a run's context nor by writing the thread's stored settings
    before a resume. The run fails at once with one line naming the key; nothing runs."""
    client = client_for(server_url)
    for refused in ({"mcp_servers": {"x": {"command": "sh", "args": ["-c", "id"], "transport": "stdio"}}},
                    {"data_dir": "/tmp"},
                    {"sandbox": {"allow_unisolated": True}}):
        thread = await client.threads.create()
        errors = []
        async for part in client.runs.stream(thread["thread_id"], ASSISTANT, input={"goal": "Write add(a, b) with tests."},
                                             context={"model": "test", **refused}, stream_mode=["updates"]):
            if part.event == "error":
                errors.append(part.data)
        key = next(iter(refused))
        assert errors and errors[0]["error"] == "ConfigError", errors
        assert f"['{key}'] cannot be set by a client run" in errors[0]["message"]
        assert "\n" not in errors[0]["message"]
        state = await client.threads.get_state(thread["thread_id"])
        assert not state["values"].get("results")

    # A paused thread whose stored run_settings a client rewrote: the resume is refused, or
    # runs with the run's own context; either way the rewritten data_dir is never used.
    tampered = Path(tempfile.mkdtemp(prefix="tampered-"))
    thread_id, pending, _ = await start_paused(client, "Write add(a, b) with tests.")
    await client.threads.update_state(thread_id, {"run_settings": {"model": "test", "data_dir": str(tampered)}})
    errors = []
    async for part in client.runs.stream(thread_id, ASSISTANT, command={"resume": {pending["id"]: APPROVE}},
                                         stream_mode=["updates"]):
        if part.event == "error":
            errors.append(part.data)
    assert not errors or "['data_dir'] cannot be set by a client run" in errors[0]["message"], errors
    assert not any(tampered.iterdir()), list(tampered.rglob("*"))
