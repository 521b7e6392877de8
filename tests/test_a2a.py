"""Agent2Agent: the server's built-in ``/a2a/{assistant_id}`` endpoint, driven by ``a2a-sdk``.

langgraph-api serves A2A for graphs whose input has ``messages``; the orchestrator's does.
The agent card describes it (the description in langgraph.json); a goal sent as an A2A
message is answered with the orchestrator's answer; a plan review comes back as
``input-required`` with the HITL request, and a data part ``{"resume": {"decisions": ...}}``
answers it. Per-run settings come from an assistant's context (here: the test model).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_harness import Server, auth_headers, token_for

pytestmark = pytest.mark.server
a2a_client = pytest.importorskip("a2a.client", reason="a2a-sdk is not installed (pip install -e '.[dev]')")

from a2a.types import Message, Part, Role, SendMessageRequest  # noqa: E402
from google.protobuf.json_format import MessageToDict, ParseDict  # noqa: E402
from google.protobuf.struct_pb2 import Value  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NO_REVIEW = {"plan": False, "high_risk_tools": False, "final_answer": False, "failures": False}


async def assistant(url: str, review: dict[str, bool], name: str) -> str:
    """An assistant of the orchestrator graph whose runs use the test model."""
    from langgraph_sdk import get_client

    client = get_client(url=url, headers=auth_headers(token_for(url)))
    created = await client.assistants.create(
        "orchestrator", context={"model": "test", "review": review}, name=name,
    )
    return str(created["assistant_id"])


async def send(client: Any, message: Message) -> dict[str, Any]:
    """Send one message (non-streaming); the task it leads to, as a dict."""
    last: dict[str, Any] = {}
    async for response in client.send_message(SendMessageRequest(message=message)):
        last = MessageToDict(response)
    assert "task" in last, last
    return dict(last["task"])


async def a2a_for(url: str, assistant_id: str) -> Any:
    headers = auth_headers(token_for(url))  # the server's token, on every A2A request too
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        card = await a2a_client.A2ACardResolver(http, f"{url}/a2a/{assistant_id}").get_agent_card()
    return await a2a_client.create_client(card, client_config=a2a_client.ClientConfig(streaming=False,
                                                                                   httpx_client=httpx.AsyncClient(timeout=120, headers=headers)))


async def test_agent_card_describes_the_orchestrator(readme_server: Server) -> None:
    from langgraph_sdk import get_client

    default = [a for a in await get_client(url=readme_server.url, headers=readme_server.headers).assistants.search(graph_id="orchestrator")
               if a["metadata"].get("created_by") == "system"]
    assert len(default) == 1
    async with httpx.AsyncClient(timeout=30, headers=readme_server.headers) as http:
        card = MessageToDict(await a2a_client.A2ACardResolver(
            http, f"{readme_server.url}/a2a/{default[0]['assistant_id']}").get_agent_card())
    described = json.loads((REPO / "langgraph.json").read_text())["graphs"]["orchestrator"]["description"]
    assert card["description"] == described
    for capability in ("task graph", "parallel", "code", "knowledge base", "refunds", "approval"):
        assert capability in card["description"]
    assert card["skills"][0]["description"] == described
    # The card as served (the SDK's typed card leaves out skill metadata): it speaks messages.
    raw = httpx.get(f"{readme_server.url}/a2a/{default[0]['assistant_id']}/.well-known/agent-card.json",
                    timeout=30, headers=readme_server.headers).json()
    (skill,) = raw["skills"]
    assert skill["metadata"]["inputSchema"]["supportsA2A"] is True
    assert "messages" in skill["metadata"]["inputSchema"]["properties"]


async def test_a_goal_sent_as_an_a2a_message_gets_the_answer(readme_server: Server) -> None:
    from langgraph_sdk import get_client

    assistant_id = await assistant(readme_server.url, NO_REVIEW, "a2a-no-review")
    client = await a2a_for(readme_server.url, assistant_id)
    goal = "Explain what a task DAG is, with one example."
    task = await send(client, Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=goal)]))
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
    answer = task["artifacts"][-1]["parts"][0]["text"]
    # The A2A context is the thread: its state holds the same goal and answer.
    state = await get_client(url=readme_server.url, headers=readme_server.headers).threads.get_state(task["contextId"])
    assert state["values"]["goal"] == goal and state["values"]["answer"] == answer and answer.strip()


async def test_a_plan_review_over_a2a_is_input_required_then_resumed(readme_server: Server) -> None:
    assistant_id = await assistant(readme_server.url, {**NO_REVIEW, "plan": True}, "a2a-plan-review")
    client = await a2a_for(readme_server.url, assistant_id)
    task = await send(client, Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER,
                                      parts=[Part(text="Compare two sorting algorithms.")]))
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", task["status"]
    (pause,) = [p["data"] for a in task["artifacts"] if a["name"] == "Interrupt" for p in a["parts"]]
    request = pause["value"]
    assert request["type"] == "plan_review" and request["action_requests"][0]["name"] == "plan"
    assert request["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]

    resume = ParseDict({"resume": {"decisions": [{"type": "approve"}]}}, Value())
    done = await send(client, Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER,
                                      context_id=task["contextId"], task_id=task["id"], parts=[Part(data=resume)]))
    assert done["status"]["state"] == "TASK_STATE_COMPLETED", done["status"]
    assert done["artifacts"][-1]["parts"][0]["text"].strip()
