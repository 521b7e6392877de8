"""The CLI against a LangGraph server (``--url``): the same runs, through ``langgraph_sdk``.

The server runs the graph ``langgraph.json`` exposes as ``orchestrator`` with its own
checkpointer; this side streams the run's progress events to the same task board, answers
pauses with the same decisions (``orchestrator.cli.answers``) and reports the same outcome
(``orchestrator.cli.session.summarise``), so output and exit codes match a local run.

Every request carries the server's token (``orchestrator/server_token.py``):
``LANGGRAPH_API_KEY`` when set, else the token file in this CLI's own data dir — what
``make serve`` made, when the CLI runs beside the server.

Server thread ids are UUIDs: a ``--thread`` name that is not one is mapped to a stable
UUID (``server_thread_id``), so ``resume NAME --url …`` finds the thread ``run`` created.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import httpx
from langgraph.types import Interrupt, StateSnapshot
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIConnectionError
from langgraph_sdk.schema import Command, StreamMode

from orchestrator.cli.answers import Requested, UsageError, resume_map
from orchestrator.cli.commands import ask_human, err
from orchestrator.cli.session import summarise
from orchestrator.cli.view import TaskBoard
from orchestrator.server_token import TOKEN_ENV, TOKEN_FILE, client_token

ASSISTANT = "orchestrator"
"""The graph id in ``langgraph.json`` (the server's default assistant for it)."""
STREAM_MODES: list[StreamMode] = ["updates", "custom"]
"""What the CLI streams: node updates and the progress events the task board draws."""
PREFLIGHT_TIMEOUT_S = 5.0
"""How long the health check waits for the server before the command gives up."""
THREAD_NAMESPACE = uuid.UUID("5b1f3c2e-8d4a-4e0b-9a57-6f3d2c1b0a99")
"""Namespace of the UUIDs that stand for ``--thread`` names on a server."""


def server_thread_id(thread: str) -> str:
    """The server's id for a thread name: the name itself if it is a UUID, else a stable UUID."""
    try:
        return str(uuid.UUID(thread))
    except ValueError:
        return str(uuid.uuid5(THREAD_NAMESPACE, thread))


def pending_interrupts(state: dict[str, Any]) -> list[Interrupt]:
    """The thread's pending interrupts (top level, or gathered from its tasks)."""
    raw = list(state.get("interrupts") or [])
    if not raw:
        for task in state.get("tasks") or []:
            raw.extend(task.get("interrupts") or [])
    seen: set[str] = set()
    out: list[Interrupt] = []
    for item in raw:
        if item["id"] not in seen:
            seen.add(item["id"])
            out.append(Interrupt(value=item.get("value"), id=item["id"]))
    return out


def snapshot_from(state: dict[str, Any]) -> StateSnapshot:
    """A server ``ThreadState`` as the ``StateSnapshot`` a local run would give ``summarise``."""
    checkpoint = state.get("checkpoint") or {}
    parent = state.get("parent_checkpoint")
    values = state.get("values")
    return StateSnapshot(
        values=values if isinstance(values, dict) else {},
        next=tuple(state.get("next") or ()),
        config={"configurable": dict(checkpoint)},
        metadata=state.get("metadata"),
        created_at=state.get("created_at"),
        parent_config={"configurable": dict(parent)} if parent else None,
        tasks=(),
        interrupts=tuple(pending_interrupts(state)),
    )


def error_text(data: Any) -> str:
    """An ``error`` stream event as ``Type: message``, like a local run reports a raise."""
    if isinstance(data, dict):
        kind = str(data.get("error") or "Error")
        message = str(data.get("message") or "")
        return f"{kind}: {message}" if message else kind
    return str(data)


async def stream_remote(
    client: LangGraphClient,
    thread_id: str,
    context: dict[str, Any] | None,
    board: TaskBoard,
    *,
    payload: Any = None,
    command: dict[str, Any] | None = None,
    checkpoint_id: str | None = None,
) -> str | None:
    """Stream one server run to the board; return the error text if the run failed."""
    try:
        async for part in client.runs.stream(
            thread_id,
            ASSISTANT,
            input=payload,
            command=cast("Command | None", command),
            context=context or None,  # a resume sends none: the thread remembers its settings
            stream_mode=STREAM_MODES,
            checkpoint_id=checkpoint_id,
        ):
            if part.event == "custom" and isinstance(part.data, dict):
                board.on_event(part.data)
            elif part.event == "error":
                return error_text(part.data)
    except (httpx.HTTPError, OSError) as exc:  # the server keeps every finished step
        return f"{type(exc).__name__}: {exc}"
    return None


async def outcome_of(client: LangGraphClient, url: str, server_id: str, label: str,
                     error: str | None = None) -> tuple[dict[str, Any], StateSnapshot]:
    """The thread's outcome as ``summarise`` gives it, with a resume hint naming the server."""
    with server_errors(url, label):  # the server may have gone away during the run
        state = dict(await client.threads.get_state(server_id))
    snapshot = snapshot_from(state)
    outcome = summarise(snapshot, label, error)
    if "resume" in outcome:
        command = f"orchestrator resume {label}"
        outcome["resume"] = outcome["resume"].replace(command, f"{command} --url {url}", 1)
    return outcome, snapshot


async def drive_remote(client: LangGraphClient, url: str, server_id: str, label: str,
                       options: dict[str, Any], *, payload: Any = None,
                       command: dict[str, Any] | None = None, as_json: bool,
                       interactive: bool) -> dict[str, Any]:
    """Run on the server until the graph finishes or pauses; answer pauses when interactive.

    ``options`` (the run's setting overrides) go as the first run's context; the thread
    stores them, so later runs of the same thread send none."""
    context: dict[str, Any] | None = options
    while True:
        with TaskBoard(err, live=not as_json and err.is_terminal) as board:
            error = await stream_remote(client, server_id, context, board,
                                        payload=payload, command=command)
        outcome, snapshot = await outcome_of(client, url, server_id, label, error)
        if outcome["status"] != "interrupted" or not interactive:
            return outcome
        payload, command, context = None, {"resume": ask_human(snapshot.interrupts)}, None


def connect(url: str) -> LangGraphClient:
    """An SDK client for the server at ``url`` that sends the token (when there is one)."""
    token = client_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return get_client(url=url, headers=headers)


def _unreachable(url: str, exc: Exception) -> UsageError:
    return UsageError(f"cannot reach the LangGraph server at {url}: {type(exc).__name__}: {exc}")


@contextmanager
def server_errors(url: str, thread: str | None = None) -> Iterator[None]:
    """The one mapping of server and connection errors to one-line ``UsageError`` messages,
    for every call ``run --url`` and ``resume --url`` make."""
    try:
        yield
    except APIConnectionError as exc:
        raise _unreachable(url, exc) from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status == 401:
            raise UsageError(
                f"the server at {url} refused the token (401): set {TOKEN_ENV} to the token in its "
                f"data dir ({TOKEN_FILE}; `make serve` prints it)") from None
        if status == 404 and thread is not None:
            raise UsageError(f"no thread {thread!r} on {url}") from None
        if status == 409 and thread is not None:
            raise UsageError(f"thread {thread} already exists; use resume, or a new --thread") from None
        try:
            detail = exc.response.json().get("detail") or exc.response.text
        except ValueError:
            detail = exc.response.text
        raise UsageError(f"the server at {url} refused the request ({status}): {str(detail)[:300]}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise _unreachable(url, exc) from None


async def check_server(url: str, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Fail fast with a ``UsageError`` when nothing answers at ``url``.

    The SDK retries refused connections for several seconds; one plain request to the
    server's health endpoint says at once whether there is a server to talk to.
    """
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            # /info: served by langgraph dev, the Agent Server and Aegra alike (/ok is not).
            response = await http.get(f"{url.rstrip('/')}/info")
    except (httpx.HTTPError, OSError) as exc:
        raise _unreachable(url, exc) from None
    if response.status_code >= 500 or response.status_code == 404:
        raise UsageError(f"{url} does not look like a LangGraph server (GET /info: {response.status_code})")


async def run_remote(url: str, goal: str, thread: str | None, options: dict[str, Any],
                     as_json: bool, interactive: bool) -> dict[str, Any]:
    """``orchestrator run GOAL --url URL``: plan and run ``goal`` on a LangGraph server.

    ``options`` (the run's setting overrides) travel as the run's context. Returns the outcome ``summarise`` describes; raises
    ``UsageError`` (exit 2) for an empty goal, an existing thread or an unreachable server.
    """
    goal = goal.strip()
    if not goal:
        raise UsageError("the goal is empty")
    await check_server(url)
    async with connect(url) as client:
        server_id = server_thread_id(thread) if thread else None
        with server_errors(url, thread):
            created = await client.threads.create(
                thread_id=server_id, if_exists="raise", graph_id=ASSISTANT,
                metadata={"name": thread} if thread else None,
            )
        server_id = str(created["thread_id"])
        return await drive_remote(client, url, server_id, thread or server_id, options,
                                  payload={"goal": goal},
                                  as_json=as_json, interactive=interactive)


async def resume_remote(url: str, thread: str, requested: Sequence[Requested], as_json: bool,
                        interactive: bool) -> dict[str, Any]:
    """``orchestrator resume THREAD --url URL``: answer a pause, or continue after a failure.

    The run continues with the setting overrides the thread stored.
    """
    await check_server(url)
    async with connect(url) as client:
        server_id = server_thread_id(thread)
        with server_errors(url, thread):
            state = dict(await client.threads.get_state(server_id))
        snapshot = snapshot_from(state)
        if not snapshot.values:
            raise UsageError(f"no thread {thread!r} on {url}")
        command: dict[str, Any] | None = None
        if snapshot.interrupts:
            command = {"resume": resume_map(snapshot.interrupts, requested)}
        elif requested:
            raise UsageError(f"thread {thread} is not paused for review; resume it without an answer")
        elif not snapshot.next:
            raise UsageError(f"thread {thread} has finished; fork it to run part of it again")
        return await drive_remote(client, url, server_id, thread, {}, command=command,
                                  as_json=as_json, interactive=interactive)
