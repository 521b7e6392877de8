"""A specialist agent as a LangGraph sub-graph: act → (approve) → tools → act … → verify.

The supervisor invokes it inside its ``run_task`` node. It is compiled without a
checkpointer, so it inherits the parent's: its steps are checkpointed under the parent
task's namespace (after every step for agents that act, otherwise only when it leaves on an
interrupt or error: the supervisor's ``specialist_durability``), and an ``interrupt`` (tool
approval) pauses the whole run and resumes here.
Its per-run dependencies arrive as the run's :class:`~agents.run_context.RunContext`.

The nodes live one idea per module: the step loop (``agents.loop``), approval
(``agents.approval``), verification (``agents.verification``), tool assembly
(``agents.toolset``).
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.approval import Approval
from agents.flows import FLOWS, Resources, uses_steps
from agents.loop import StepLoop
from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of
from agents.state import ModelFactory, SpecialistInput, SpecialistOutput, SpecialistState
from agents.verification import Verifier

_cache: dict[tuple[str, ModelFactory | None], CompiledStateGraph[Any, Any, Any, Any]] = {}


def build_specialist(
    spec: AgentSpec, *, model_factory: ModelFactory | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled sub-graph for ``spec`` (cached per spec and model factory).

    Compiled without a checkpointer: invoked inside a parent node it inherits the parent's,
    so interrupts pause the whole run. ``model_factory`` replaces ``chat_model`` (tests).
    """
    key = (spec.model_dump_json(), model_factory)
    graph = _cache.get(key)
    if graph is None:
        loop = StepLoop(spec, model_factory)
        verifier = Verifier(model_factory)
        builder = StateGraph(
            SpecialistState,
            context_schema=RunContext,
            input_schema=SpecialistInput,
            output_schema=SpecialistOutput,
        )
        flow = FLOWS.get(spec.name)
        if flow is not None:
            resources = Resources(spec.model_role, model_factory)
            builder.add_node("route", _route(spec))
            builder.add_node("steps", flow(f"{spec.name}_steps", resources))
            builder.add_edge(START, "route")
            builder.add_conditional_edges("route", _after_route)
            builder.add_edge("steps", "__end__")
        else:
            builder.add_edge(START, "act")
        builder.add_node("act", loop.act)
        builder.add_node("approve", Approval(spec).approve)
        builder.add_node("tools", loop.tools)
        builder.add_node("finalize", loop.finalize)
        builder.add_node("verify", verifier.verify)
        builder.add_conditional_edges("act", loop.after_act)
        builder.add_edge("approve", "tools")
        builder.add_conditional_edges("tools", loop.after_tools)
        builder.add_conditional_edges("finalize", loop.after_finalize)
        builder.add_conditional_edges("verify", loop.after_verify)
        graph = builder.compile(name=spec.name)
        if len(_cache) > 128:
            _cache.clear()
        _cache[key] = graph
    return graph


def _route(spec: AgentSpec) -> Any:
    """The first node: the step flow or the tool loop, for this run's model."""

    async def route(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return {"flow": "steps" if uses_steps(spec, context_of(runtime).profile) else "loop"}

    return route


def _after_route(state: SpecialistState) -> Literal["steps", "act"]:
    return "steps" if state.get("flow") == "steps" else "act"
