"""What ``langgraph.json`` serves besides the supervisor: the checkpointer and the specialists.

``langgraph dev`` (and a LangGraph server built from the same file) loads:

- ``checkpointer``: an async context manager yielding the server's checkpointer. SQLite at
  ``<data_dir>/server-checkpoints.sqlite`` by default (a file of its own, so the server's
  threads never mix with the CLI's ``checkpoints.sqlite``); when ``checkpoint_uri`` names
  PostgreSQL, that database, exactly as the CLI opens it.
- one graph per built-in specialist (``researcher``, ``coder`` …), each the sub-graph the
  supervisor runs for a task, so a single agent can be tried on its own through the API.

The server runs every coroutine on one event loop and rejects blocking calls in it
(``BlockingError``), so everything here that touches the file system runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agents import AgentRegistry, base_settings, build_specialist
from agents.run_context import serve_clients
from graph.persistence import open_checkpointer
from graph.supervisor import build_graph
from orchestrator.server_auth import server_token

SERVER_CHECKPOINT_FILE = "server-checkpoints.sqlite"
"""The server's SQLite checkpoint file, under ``data_dir``."""


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The server's checkpointer, set up on entry and closed on exit.

    Named by ``langgraph.json`` as ``{"checkpointer": {"path": "./orchestrator/server.py:checkpointer"}}``.
    Settings come from ``orchestrator.toml`` and ``ORCHESTRATOR_*`` variables, as for every run.
    """
    # Loading settings reads files; it also warms the cache the graph's nodes use.
    settings = await asyncio.to_thread(base_settings)
    # The server's startup hook: make the access token now (a server started without
    # `make serve` has none yet), so it is in its file before the first client needs it.
    await server_token()
    async with open_checkpointer(settings, SERVER_CHECKPOINT_FILE) as saver:
        yield saver


serve_clients()  # runs here come from remote clients: they may set only client_settable


def _specialists() -> dict[str, CompiledStateGraph[Any, Any, Any, Any]]:
    """One compiled sub-graph per built-in specialist, by agent name."""
    return {spec.name: build_specialist(spec) for spec in AgentRegistry.builtin().specs()}


graph = build_graph()
"""The supervisor (the server brings its own checkpointer)."""

_SPECIALISTS = _specialists()

researcher = _SPECIALISTS["researcher"]
"""The researcher specialist on its own (input: ``task``, ``goal``, ``context``, ``feedback``)."""
coder = _SPECIALISTS["coder"]
"""The coder specialist on its own."""
analyst = _SPECIALISTS["analyst"]
"""The analyst specialist on its own."""
writer = _SPECIALISTS["writer"]
"""The writer specialist on its own."""
reviewer = _SPECIALISTS["reviewer"]
"""The reviewer specialist on its own."""
support = _SPECIALISTS["support"]
"""The customer-support specialist on its own."""
