"""An agent's tools for one run: built-ins, then MCP servers' tools; running a call safely.

MCP servers are listed once per process (listing spawns or connects to the server); an
unreachable one is noted for the model and not asked again for a while.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import get_runtime
from pydantic import BaseModel

from agents.prompts import OBSERVATION_MAX_CHARS
from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of, thread_id_of
from agents.steps import ToolCallRecord
from core.text import truncate
from tools.actions import ACTING_FOR_FIELD, INJECTED_FIELDS, KEY_FIELD, idempotency_key
from tools.base import traits_of
from tools.context import ToolContext
from tools.customer_service import owners_line, requester_of
from tools.effects import parsed_args
from tools.mcp import load_mcp_tools
from tools.registry import TOOL_NAMES, build_tools, is_high_risk, tool_traits, tools_where

log = logging.getLogger(__name__)

WRITE_TOOLS = {n: w for n in TOOL_NAMES if (w := tool_traits(n).writes_file)}
"""Built-in tools whose successful calls produce workspace artifacts, and the argument naming
the file (read from each tool's declared traits)."""
MUTATING_TOOLS = tools_where(TOOL_NAMES, "mutates")
"""Built-in tools that change what later calls see: after one runs, repeating a call is
legitimate (read from each tool's declared traits)."""

MCP_RETRY_SECONDS = 30.0
"""How long an MCP server that gave no tools is not asked again (per process)."""

_mcp_cache: dict[tuple[str, str], list[BaseTool]] = {}
"""(server name, its config as JSON) -> its tools, for the process: listing a server's tools
spawns or connects to it, so it is done once, not per step. The tools themselves are
loop-independent (each call opens its own session)."""
_mcp_down: dict[tuple[str, str], float] = {}
"""(server name, config JSON) -> monotonic time until which the server is not retried."""


async def _server_tools(name: str, config: dict[str, Any]) -> list[BaseTool] | None:
    """One MCP server's tools (cached), or None when it is unreachable or offers none."""
    key = (name, json.dumps(config, sort_keys=True, default=str))
    hit = _mcp_cache.get(key)
    if hit is not None:
        return hit
    if _mcp_down.get(key, 0.0) > time.monotonic():
        return None
    # load_mcp_tools logs and skips a server it cannot reach, so "no tools" means "down".
    # Concurrent first uses may both list the server; the results are the same.
    tools = await load_mcp_tools({name: config})
    if not tools:
        _mcp_down[key] = time.monotonic() + MCP_RETRY_SECONDS
        return None
    _mcp_down.pop(key, None)
    _mcp_cache[key] = tools
    return tools


def _mcp_unavailable_note(server: str) -> str:
    return (
        f"The tools of MCP server {server!r} are unavailable (it could not be reached or "
        "offers no tools). Continue with your other tools."
    )


async def agent_tools(
    spec: AgentSpec, ctx: RunContext, run_id: str
) -> tuple[list[BaseTool], list[str]]:
    """The agent's tools, built-in then MCP, and a note per MCP server that is unavailable."""
    # Built-ins are cheap and I/O-free (they create directories and databases lazily, in
    # threads); the tool context itself is built once per run.
    names = spec.builtin_tools
    tools = build_tools(names, ctx.tools(run_id)) if names else []
    settings = ctx.settings
    notes: list[str] = []
    taken = {t.name for t in tools}
    for server in spec.mcp_servers:
        server_config = settings.mcp_servers.get(server)
        loaded = None if server_config is None else await _server_tools(server, server_config)
        if loaded is None:
            notes.append(_mcp_unavailable_note(server))
            continue
        for tool in loaded:
            if tool.name in taken:  # a built-in or an earlier server's tool wins
                log.warning("MCP tool %r of server %r skipped: name taken", tool.name, server)
                continue
            taken.add(tool.name)
            tools.append(tool)
    return tools, notes


def observation(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif _is_text_blocks(value):  # MCP tools return content blocks: keep just the text
        text = "\n".join(str(block["text"]) for block in value)
    elif isinstance(value, BaseModel):
        text = value.model_dump_json()
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return truncate(text.strip() or "(no output)", OBSERVATION_MAX_CHARS)


def _is_text_blocks(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(b, dict) and b.get("type") == "text" and "text" in b for b in value)
    )


# -- high-risk actions: idempotency keys and a deadline that cannot cut one in half ---------


def task_id_of(config: RunnableConfig | None) -> str:
    """The supervisor task a specialist step works on (its run metadata), or ``-``."""
    return str(((config or {}).get("metadata") or {}).get("task_id") or "-")


def action_scope(config: RunnableConfig | None) -> str:
    """The run's ``action_scope`` setting (a fork given a new scope acts again)."""
    try:
        runtime = get_runtime()
    except Exception:  # outside a graph run
        return ""
    return context_of(runtime).settings.action_scope


def action_key(tool: BaseTool, args: Mapping[str, Any], config: RunnableConfig | None) -> str | None:
    """The idempotency key of a high-risk call: run (thread), scope, task, tool and the
    identity of its arguments. None for other tools and for arguments the tool would refuse."""
    if not is_high_risk(tool):
        return None
    parsed = parsed_args(tool, args)
    if parsed is None:
        return None
    return idempotency_key(thread_id_of(config), task_id_of(config), tool.name,
                           parsed.identity(), action_scope(config))


@dataclass
class ActionGuard:
    """High-risk actions of one task attempt under its wall-time budget."""

    deadline: float | None
    """``time.monotonic()`` after which no new action starts."""
    running: set[asyncio.Future[Any]] = field(default_factory=set)
    completed: list[str] = field(default_factory=list)
    """Outcomes of the actions that finished (also those that finished after a time-out)."""

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    async def settle(self) -> None:
        """Wait for every action still running: a time-out is reported after they finish."""
        while self.running:
            await asyncio.wait(set(self.running))


_guard: ContextVar[ActionGuard | None] = ContextVar("orchestrator_action_guard", default=None)


@contextmanager
def guard_actions(wall_s: float | None) -> Iterator[ActionGuard]:
    """Track the high-risk actions run inside (a task attempt) against its wall time."""
    guard = ActionGuard(None if wall_s is None else time.monotonic() + wall_s)
    token = _guard.set(guard)
    try:
        yield guard
    finally:
        _guard.reset(token)


async def _run_action(tool: BaseTool, args: dict[str, Any], config: RunnableConfig) -> Any:
    """Run a high-risk call so that cancelling the task cannot cut it in half: it is not
    started after the deadline, and once started it completes (and is recorded) before the
    cancellation goes on."""
    guard = _guard.get()
    if guard is not None and guard.expired():
        raise ActionNotStarted("the task's time budget ran out before this action started; it did not run")
    action = asyncio.ensure_future(tool.ainvoke(args, config))
    if guard is not None:
        guard.running.add(action)
        action.add_done_callback(guard.running.discard)
        action.add_done_callback(lambda f: _note_outcome(guard, f))
    try:
        return await asyncio.shield(action)
    except asyncio.CancelledError:
        await asyncio.wait({action})  # the action finishes; its outcome is in the ledger
        raise


def _note_outcome(guard: ActionGuard, action: asyncio.Future[Any]) -> None:
    if not action.cancelled() and action.exception() is None:
        text = observation(action.result())
        if not text.lower().startswith("error"):
            guard.completed.append(text)


class ActionNotStarted(RuntimeError):
    """A high-risk action was not started because the task's deadline had passed."""


async def run_tool(
    tool: BaseTool, call: ToolCallRecord, config: RunnableConfig
) -> tuple[str, bool]:
    """Run one tool; (observation, ok). Errors, including invalid arguments, are observations.

    A high-risk call carries its idempotency key (the tool returns the recorded outcome of
    an action that already ran) and runs shielded from cancellation."""
    args = dict(call.get("args", {}))
    args.pop(KEY_FIELD, None)  # only the orchestrator sets the key
    if traits_of(tool).for_customer:
        # Set by the agent layer (``for_requester``); a call without it is for nobody.
        args.setdefault(ACTING_FOR_FIELD, "")
    else:
        args.pop(ACTING_FOR_FIELD, None)
    try:
        # Inside the try: arguments the schema refuses (an amount of 1e400) are a failed
        # call with the schema's message, never an exception out of the task.
        key = action_key(tool, args, config)
        if key is None:
            result = await tool.ainvoke(args, config)
        else:
            result = await _run_action(tool, {**args, KEY_FIELD: key}, config)
    except GraphBubbleUp:
        raise  # interrupts and parent commands are control flow, not tool errors
    except Exception as err:  # the model must see what went wrong and may fix it
        return f"Error from {tool.name}: {type(err).__name__}: {truncate(str(err), 800)}", False
    text = observation(result)
    return text, not text.lower().startswith("error")


async def for_requester(
    calls: list[ToolCallRecord], by_name: Mapping[str, BaseTool], tool_ctx: ToolContext,
    request: str,
) -> list[ToolCallRecord]:
    """``calls`` with every call of a tool that acts for a customer bound to the customer
    ``request`` is about (``acting_for``, established by code from the task's text;
    whatever a model wrote there is replaced): the tool refuses another customer's record."""
    acting = [
        i for i, c in enumerate(calls)
        if (tool := by_name.get(c.get("tool", ""))) is not None and traits_of(tool).for_customer
    ]
    if not acting:
        return calls
    requester = await asyncio.to_thread(requester_of, tool_ctx, request)
    customer = requester.customer or ""
    out = list(calls)
    for i in acting:
        args = {k: v for k, v in (calls[i].get("args") or {}).items() if k not in INJECTED_FIELDS}
        owners = await asyncio.to_thread(owners_line, tool_ctx, args, customer)
        thought = " ".join(p for p in (str(calls[i].get("thought") or "").strip(), owners) if p)
        out[i] = {**calls[i], "args": {**args, ACTING_FOR_FIELD: customer}, "thought": thought}
    return out
