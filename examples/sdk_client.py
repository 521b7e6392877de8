"""Run a goal on the orchestrator's LangGraph server with ``langgraph_sdk``.

Start the server (see docs/server.md), then::

    python examples/sdk_client.py --url http://127.0.0.1:8123              # the server's default model
    python examples/sdk_client.py --url http://127.0.0.1:8123 --goal "Compare Python and Go" --model test

The server answers only requests that carry its token: ``LANGGRAPH_API_KEY`` (the SDK's own
variable), ``--token``, or — run from the repository the server runs in — the token file
``make serve`` made, ``.orchestrator/server-token``.

The script creates a thread, streams the run (progress events to stderr), approves the
plan when the run pauses for review, approves any other pause too, and prints the answer.
Only ``langgraph-sdk`` is needed on the client side. Exit code 0 when the run completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.errors import AuthenticationError
from langgraph_sdk.schema import Command

ASSISTANT = "orchestrator"
"""The graph id in langgraph.json."""

APPROVE: dict[str, Any] = {"decisions": [{"type": "approve"}]}
"""The answer that says "go ahead" to any pause. Every pause is a LangChain human-in-the-loop
request (``action_requests`` + ``review_configs``), answered with decisions: approve, edit
(``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}``) or reject
(``{"type": "reject", "message": "why"}``); see docs/server.md."""


TOKEN_FILE = Path(".orchestrator/server-token")
"""Where ``make serve`` keeps the token (in the default data dir of the repository)."""


def find_token(given: str | None) -> str | None:
    """The server's token: ``--token``, ``LANGGRAPH_API_KEY``, else the default token file."""
    if given:
        return given
    if os.environ.get("LANGGRAPH_API_KEY"):
        return os.environ["LANGGRAPH_API_KEY"].strip()
    return TOKEN_FILE.read_text().strip() if TOKEN_FILE.is_file() else None


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def describe(event: dict[str, Any]) -> str:
    """One progress event as a line."""
    kind = event.get("event", "?")
    if kind == "plan":
        tasks = ", ".join(f"{t['id']}:{t['agent']}" for t in event.get("tasks", []))
        return f"plan v{event.get('version')}: {tasks}"
    if kind in ("task_started", "task_finished"):
        return f"{kind} {event.get('task_id')} ({event.get('agent')}) {event.get('status', '')}".rstrip()
    return kind


async def run(url: str, goal: str, model: str | None, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with get_client(url=url, headers=headers) as client:
        thread = await client.threads.create()
        thread_id = thread["thread_id"]
        log(f"thread {thread_id}")
        # Per-run settings travel as the run's context (model, review points, budgets ...),
        # once: the thread remembers them when it is resumed.
        context: dict[str, Any] | None = {"review": {"plan": True}}
        if model:  # otherwise the server's own default (the embedded model, out of the box)
            context["model"] = model
        payload: dict[str, Any] | None = {"goal": goal}
        command: Command | None = None
        while True:
            async for part in client.runs.stream(
                thread_id, ASSISTANT, input=payload, command=command, context=context,
                stream_mode=["updates", "custom"],
            ):
                if part.event == "custom":
                    log(f"  · {describe(part.data)}")
                elif part.event == "error":
                    log(f"run failed: {json.dumps(part.data)}")
                    return 1
            state = await client.threads.get_state(thread_id)
            if not state["interrupts"]:
                break
            # Answer every pending pause; several at once are resumed by interrupt id.
            answers = {}
            for pending in state["interrupts"]:
                request = pending["value"]["action_requests"][0]
                log(f"paused: {pending['value'].get('type')} → approving {request['name']}")
                log("    " + request["description"].replace("\n", "\n    "))
                answers[pending["id"]] = APPROVE
            payload, command, context = None, {"resume": answers}, None
        values = state["values"]
        assert isinstance(values, dict)
        print(values["messages"][-1]["content"])  # the answer, also in values["answer"]
        log(f"status: {values.get('status')}")
        return 0 if values.get("status") == "completed" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8123")
    parser.add_argument("--goal", default="When should a retrieval system combine full-text and vector search?")
    parser.add_argument("--model", default=None,
                        help="local, test (scripted, no LLM) or a configured name; default: the server's")
    parser.add_argument("--token", default=None,
                        help="the server's token (default: LANGGRAPH_API_KEY, else .orchestrator/server-token)")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.url, args.goal, args.model, find_token(args.token)))
    except AuthenticationError as exc:
        log(f"error: the server refused the token (401): {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
