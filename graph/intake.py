"""The run's first node: the goal from the input — ``goal``, or a chat's ``messages`` — checked.

Generic LangGraph clients (Agent Chat UI, Studio's chat, ``useStream``, A2A) send
``{"messages": [...]}``: the last human message is the goal and the earlier messages are
context for the planner. The final answer goes back into ``messages`` as an AI message
(:func:`answer_message`), so the same clients show it.

A thread runs one goal: a new input on a thread whose run has started is refused (start a
new thread), because the blackboard of the earlier run would mix into the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, get_buffer_string
from langgraph.runtime import Runtime

from agents import RunContext
from core.goal import InvalidGoal, check_goal
from graph.runtime import context_for
from graph.state import OrchestratorState

CONVERSATION_CHARS = 4000
"""At most this much of the earlier conversation goes to the planner (the newest part)."""


def _text(message: AnyMessage) -> str:
    return message.text if hasattr(message, "text") else str(message.content)


def split_messages(messages: Sequence[AnyMessage]) -> tuple[str | None, str]:
    """(the last human message's text, the conversation before it as text)."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            earlier = get_buffer_string(list(messages[:index]), human_prefix="User", ai_prefix="Assistant")
            return _text(messages[index]), earlier[-CONVERSATION_CHARS:]
    return None, ""


async def intake(state: OrchestratorState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Check the input; the goal (and the conversation before it) into the state."""
    if state.get("status"):
        raise InvalidGoal(
            "this thread has already run a goal; start a new thread for a new one"
            " (resume or fork this one to continue it)"
        )
    settings = context_for(runtime, state).settings
    goal: object = state.get("goal")
    conversation = ""
    if goal is None and state.get("messages"):
        goal, conversation = split_messages(state["messages"])
    update: dict[str, Any] = {"goal": check_goal(goal, settings.limits.max_goal_chars)}
    if conversation:
        update["conversation"] = conversation
    if not state.get("messages"):  # a goal-only input: the chat shows it as the user's message
        update["messages"] = [HumanMessage(update["goal"], id="goal")]
    return update


def answer_message(answer: str) -> dict[str, Any]:
    """The state update that puts the final answer into ``messages``.

    One id per thread: a re-synthesis after a rejected answer, or an edited answer,
    replaces the message instead of adding another."""
    return {"messages": [AIMessage(answer, id="answer")]}
