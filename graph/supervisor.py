"""The supervisor state machine: plan -> review -> dispatch ⇄ run tasks -> assess -> synthesize."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import NodeTimeoutError
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from agents import RunContext
from graph.assessment import assess
from graph.execution import dispatch, run_task, task_crashed
from graph.intake import intake
from graph.planner import plan, review_plan
from graph.state import OrchestratorInput, OrchestratorState
from graph.synthesis import review_answer, synthesize


def is_transient(exc: Exception) -> bool:
    """Errors worth retrying as they are: the network, rate limits, 5xx, timeouts."""
    import httpx
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc,
        (ConnectionError, TimeoutError, NodeTimeoutError, httpx.TransportError,
         openai.APIConnectionError, openai.APITimeoutError),
    )


TRANSIENT_RETRY = RetryPolicy(
    max_attempts=4, initial_interval=1.0, backoff_factor=2.0, max_interval=20.0, retry_on=is_transient
)  # 1 + 2 + 4 s of backoff: longer than the embedded model's server takes to restart
"""Backoff for transient model/tool errors; anything else fails a task at once."""


def build_graph(*, checkpointer: BaseCheckpointSaver | bool | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the supervisor. Without a checkpointer, as the LangGraph server requires."""
    builder = StateGraph(OrchestratorState, context_schema=RunContext, input_schema=OrchestratorInput)
    # Every node that calls a model retries transient errors (a restarted server, a 503).
    builder.add_node("intake", intake)
    builder.add_node("plan", plan, retry_policy=TRANSIENT_RETRY, destinations=("plan", "review_plan"))
    builder.add_node("review_plan", review_plan, destinations=("plan", "review_plan", "dispatch"))
    builder.add_node("dispatch", dispatch, destinations=("run_task", "synthesize"))
    # run_task takes a Send payload, not the state: hence the ignore.
    builder.add_node(
        "run_task",
        run_task,  # type: ignore[arg-type, call-overload]
        retry_policy=TRANSIENT_RETRY,
        error_handler=task_crashed,
        destinations=("assess",),
    )
    builder.add_node("assess", assess, retry_policy=TRANSIENT_RETRY, destinations=("dispatch", "synthesize"))
    builder.add_node("synthesize", synthesize, retry_policy=TRANSIENT_RETRY)
    builder.add_node("review_answer", review_answer, destinations=("synthesize", "__end__"))
    builder.add_edge(START, "intake")
    builder.add_edge("intake", "plan")
    builder.add_edge("run_task", "assess")
    builder.add_edge("synthesize", "review_answer")
    return builder.compile(checkpointer=checkpointer, name="orchestrator")

