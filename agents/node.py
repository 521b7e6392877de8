"""What every node of a specialist's sub-graph starts from, and its structured model call.

Each node used to open with the same lines (the run config, the run's context and settings,
the agent's tools, the role's model) and to close a structured call the same way (the value
or the error, and the usage either way); both live here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.runtime import Runtime

from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of, thread_id_of
from agents.state import ModelFactory, SpecialistState, structured_usage
from agents.toolset import agent_tools
from core.models import StructuredOutputError, ainvoke_structured
from core.models.structured import M
from core.settings import Settings
from core.usage import UsageDict


@dataclass(frozen=True)
class NodeStart:
    """A node's run config and the run's context (settings, models, tools)."""

    config: RunnableConfig
    ctx: RunContext

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    async def model(self, role: str, factory: ModelFactory | None) -> BaseChatModel:
        """``role``'s chat model (cached per model configuration)."""
        return await self.ctx.chat_model(role, factory)

    async def tools(self, spec: AgentSpec) -> tuple[list[BaseTool], list[str]]:
        """The agent's tools for this run, and a note per MCP server that is unavailable."""
        return await agent_tools(spec, self.ctx, thread_id_of(self.config))


def node_start(runtime: Runtime[RunContext]) -> NodeStart:
    """The current node's config and context (call inside a node)."""
    return NodeStart(get_config(), context_of(runtime))


async def ask(
    model: BaseChatModel,
    schema: type[M],
    messages: Sequence[BaseMessage],
    state: SpecialistState,
    config: RunnableConfig,
) -> tuple[M | StructuredOutputError, UsageDict]:
    """One structured call: the value, or the error when no reply validated; and the
    state's usage plus what the call spent (counted either way)."""
    try:
        result = await ainvoke_structured(model, schema, messages, config=config)
    except StructuredOutputError as err:
        return err, structured_usage(state, err.usage)
    return result.value, structured_usage(state, result.usage)
