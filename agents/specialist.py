"""A specialist agent as a LangGraph sub-graph: act → (approve) → tools → act … → verify.

The supervisor invokes it inside its ``run_task`` node. It is compiled without a
checkpointer, so it inherits the parent's: every step is checkpointed under the parent
task's namespace, and an ``interrupt`` (tool approval) pauses the whole run and resumes here.

Nodes:

- ``act``: one model step (structured ``AgentStep`` or native tool calls) → tool calls or
  a final answer; invalid replies become notes for the next step, never crashes.
- ``approve``: asks a human before a high-risk tool runs (its own node, so resuming re-runs
  only the question, and the tool node after it runs exactly once).
- ``tools``: runs the calls; errors and bad arguments become observations.
- ``finalize``: after ``limits.max_agent_steps`` steps, one forced final-answer call.
- ``verify``: the reviewer model checks the answer against the acceptance criteria; a
  failure sends the task back to ``act`` at most ``limits.max_verification_attempts`` times.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, Literal, Required, TypedDict, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from pydantic import BaseModel

from agents.prompts import (
    OBSERVATION_MAX_CHARS,
    ToolMode,
    TraceEntry,
    forced_answer_prompt,
    prompt_budget,
    review_messages,
    truncate,
    worker_messages,
)
from agents.registry import AgentSpec
from agents.steps import (
    Decision,
    FinalAnswer,
    ToolCallRecord,
    Verdict,
    call_key,
    clean_citations,
    from_native,
    from_structured,
    step_schema,
)
from core.models import (
    StructuredOutputError,
    achat_model,
    ainvoke_structured,
    chat_model,
    tool_mode,
)
from core.models.structured import Usage
from core.runconfig import run_id_for, settings_for
from core.settings import Settings
from tools.context import ToolContext
from tools.mcp import load_mcp_tools
from tools.registry import build_tools, is_high_risk

log = logging.getLogger(__name__)

ModelFactory = Callable[[Settings, str], BaseChatModel]
"""``(settings, role) -> chat model``; the default is ``core.models.chat_model``."""

WRITE_TOOLS = {"write_file": "path"}
"""Tools whose successful calls produce workspace artifacts, and the argument naming the file."""
MUTATING_TOOLS = frozenset({"write_file", "run_python", "issue_refund", "update_ticket"})
"""Tools that change what later calls see: after one runs, repeating a call is legitimate."""


class Verification(TypedDict):
    """The reviewer's verdict on the final answer."""

    passed: bool
    feedback: str


class SpecialistInput(TypedDict, total=False):
    """What the supervisor passes in."""

    task: Required[dict[str, Any]]
    """The Task as a dict (id, agent, instruction, acceptance_criteria, depends_on)."""
    goal: str
    context: str
    """Dependency results, already selected and rendered by the supervisor."""
    feedback: str
    """Earlier reviewer or human feedback for this task (may be empty)."""


class TaskUsage(TypedDict):
    """Tokens and model calls, summed (the keys match ``TaskMetrics``)."""

    tokens_in: int
    tokens_out: int
    model_calls: int


def _add_usage(state: SpecialistState, tokens_in: int, tokens_out: int, calls: int) -> TaskUsage:
    usage = state.get("usage") or TaskUsage(tokens_in=0, tokens_out=0, model_calls=0)
    return TaskUsage(
        tokens_in=usage["tokens_in"] + tokens_in,
        tokens_out=usage["tokens_out"] + tokens_out,
        model_calls=usage["model_calls"] + calls,
    )


def _structured_usage(state: SpecialistState, usage: Usage) -> TaskUsage:
    return _add_usage(state, usage.input_tokens, usage.output_tokens, usage.calls)


class SpecialistOutput(TypedDict, total=False):
    """What the sub-graph returns."""

    output: str
    citations: list[str]
    artifacts: list[str]
    """Workspace files the agent wrote."""
    steps: int
    """Model calls made (tool steps, final answers, the forced answer)."""
    verification: Verification | None
    """None when not verified (verification off, or no acceptance criteria)."""
    error: str | None
    usage: TaskUsage
    """Model usage of this invocation, worker and reviewer, including calls made before an
    interrupt (a resumed parent node only sees the calls made after it resumed)."""


class SpecialistState(SpecialistInput, SpecialistOutput, total=False):
    """Input, output and the loop's working state (all JSON-compatible)."""

    trace: list[TraceEntry]
    """Tool calls with their results and notes to the model, rendered into each prompt."""
    pending: list[ToolCallRecord]
    """Calls chosen by the last ``act`` step, not yet run."""
    round_steps: int
    """Steps since the last (re)start; the step limit applies per attempt."""
    failed_verifications: int


# -- per-run resources --------------------------------------------------------------------


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


async def _tools(
    spec: AgentSpec, settings: Settings, config: RunnableConfig
) -> tuple[list[BaseTool], list[str]]:
    """The agent's tools, built-in then MCP, and a note per MCP server that is unavailable."""
    # Built-ins are cheap and I/O-free (they create directories and databases lazily, in
    # threads), so they are rebuilt per node rather than cached across runs.
    names = spec.builtin_tools
    ctx = ToolContext.from_settings(settings, run_id_for(config)) if names else None
    tools = build_tools(names, ctx) if ctx is not None else []
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


def _mode(settings: Settings, role: str) -> ToolMode:
    return cast(ToolMode, tool_mode(settings.model_for(role)))


def _budget(settings: Settings, role: str, tools: Sequence[Any] = ()) -> int:
    cfg = settings.model_for(role)
    return prompt_budget(cfg.context_window, cfg.max_tokens, tools)


def _observation(value: Any) -> str:
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


def _note(step: int, text: str) -> TraceEntry:
    return TraceEntry(step=step, kind="note", text=text)


# -- the graph ------------------------------------------------------------------------------


def _verification_due(state: SpecialistState, settings: Settings) -> bool:
    task = state.get("task") or {}
    return settings.verify_results and bool(str(task.get("acceptance_criteria") or "").strip())


class _Nodes:
    """The sub-graph's nodes for one agent spec; every node is async and non-blocking."""

    def __init__(self, spec: AgentSpec, model_factory: ModelFactory) -> None:
        self.spec = spec
        self.model_factory = model_factory

    async def _model(self, settings: Settings, role: str) -> BaseChatModel:
        return await achat_model(settings, role, self.model_factory)

    # act ---------------------------------------------------------------------------------

    async def act(self, state: SpecialistState, config: RunnableConfig) -> dict[str, Any]:
        """One model step: choose tool calls or give the final answer."""
        settings = settings_for(config)
        tools, unavailable = await _tools(self.spec, settings, config)
        by_name = {t.name: t for t in tools}
        mode = _mode(settings, self.spec.model_role)
        model = await self._model(settings, self.spec.model_role)
        steps = state.get("steps", 0) + 1
        round_steps = state.get("round_steps", 0) + 1
        trace = list(state.get("trace") or [])
        # An unreachable MCP server is noted once per task; the agent goes on without it.
        noted = {e.get("text") for e in trace if e.get("kind") == "note"}
        trace.extend(_note(steps, n) for n in unavailable if n not in noted)
        view = {**state, "trace": trace}  # the model sees the note in this very step

        if mode == "structured":
            schema = step_schema([t.name for t in tools])
            messages = worker_messages(
                self.spec,
                tools,
                mode,
                view,
                budget_tokens=_budget(settings, self.spec.model_role, [schema]),
            )
            try:
                result = await ainvoke_structured(model, schema, messages, config=config)
                decision = from_structured(result.value, steps)
                usage = _structured_usage(state, result.usage)
            except StructuredOutputError as err:
                decision = _invalid_step(err)
                usage = _structured_usage(state, err.usage)
        else:
            bound: list[Any] = [*tools, FinalAnswer]
            messages = worker_messages(
                self.spec,
                tools,
                mode,
                view,
                budget_tokens=_budget(settings, self.spec.model_role, bound),
            )
            reply = await model.bind_tools(bound, tool_choice="any").ainvoke(messages, config)
            decision = from_native(cast(AIMessage, reply), steps, set(by_name))
            meta = cast(AIMessage, reply).usage_metadata
            n_in, n_out = (meta["input_tokens"], meta["output_tokens"]) if meta else (0, 0)
            usage = _add_usage(state, n_in, n_out, 1)

        update: dict[str, Any] = {
            "steps": steps,
            "round_steps": round_steps,
            "pending": [],
            "usage": usage,
        }
        trace.extend(_note(steps, n) for n in decision.notes)
        if decision.answer is not None:
            update.update(output=decision.answer, citations=decision.citations, error=None)
        else:
            review_on = settings.review.high_risk_tools
            calls = [self._classify(c, by_name, trace, review_on) for c in decision.calls]
            update["pending"] = calls
        update["trace"] = trace
        return update

    @staticmethod
    def _classify(
        call: ToolCallRecord,
        by_name: dict[str, BaseTool],
        trace: Sequence[TraceEntry],
        review_on: bool,
    ) -> ToolCallRecord:
        """Mark a call: run it, ask first, or answer it without running (invalid, repeated)."""
        if call.get("status") == "invalid":
            return call
        tool = by_name.get(call["tool"])
        if tool is None:
            return {**call, "status": "invalid", "feedback": f"there is no tool {call['tool']!r}"}
        if _repeat_of(call, trace) is not None:
            # Small models often repeat themselves; re-running helps no one, and a human who
            # rejected (or approved and saw run) an action is not asked about it again.
            return {**call, "status": "duplicate"}
        if review_on and is_high_risk(tool):
            return {**call, "status": "needs_approval"}
        return call

    # approve -----------------------------------------------------------------------------

    async def approve(self, state: SpecialistState, config: RunnableConfig) -> dict[str, Any]:
        """Ask a human about each high-risk call; the resume value is {approved, feedback}."""
        task = state.get("task") or {}
        pending: list[ToolCallRecord] = []
        for call in state.get("pending") or []:
            if call.get("status") == "needs_approval":
                answer = interrupt(
                    {
                        "type": "tool_approval",
                        "task_id": task.get("id"),
                        "agent": self.spec.name,
                        "tool": call["tool"],
                        "args": call.get("args", {}),
                    }
                )
                approved, feedback = parse_approval(answer)
                call = {
                    **call,
                    "status": "approved" if approved else "rejected",
                    "feedback": feedback,
                }
            pending.append(call)
        return {"pending": pending}

    # tools -------------------------------------------------------------------------------

    async def tools(self, state: SpecialistState, config: RunnableConfig) -> dict[str, Any]:
        """Run the pending calls in order; every outcome becomes an observation."""
        settings = settings_for(config)
        tools, _ = await _tools(self.spec, settings, config)
        by_name = {t.name: t for t in tools}
        trace = list(state.get("trace") or [])
        artifacts = list(state.get("artifacts") or [])
        step = state.get("steps", 0)
        for call in state.get("pending") or []:
            entry = TraceEntry(
                step=step,
                kind="call",
                id=call.get("id", ""),
                tool=call["tool"],
                args=call.get("args", {}),
                thought=call.get("thought", ""),
                ok=False,
            )
            status = call.get("status")
            if status == "invalid":
                entry["observation"] = f"Error: {call.get('feedback', 'invalid call')}."
            elif status == "rejected":
                why = call.get("feedback") or "no reason given"
                entry["observation"] = (
                    f"Rejected by a human reviewer; the action did not run. Reason: {why}. "
                    "Do not repeat it."
                )
            elif status == "duplicate":
                entry["observation"] = _repeat_observation(trace, call)
            elif status == "needs_approval":  # unreachable via the graph; never run unasked
                entry["observation"] = "Error: this action needs approval and did not run."
            elif (tool := by_name.get(call["tool"])) is None:  # e.g. its MCP server went away
                entry["observation"] = f"Error: the tool {call['tool']!r} is unavailable now."
            else:
                entry["observation"], entry["ok"] = await _run_tool(tool, call, config)
                path = call.get("args", {}).get(WRITE_TOOLS.get(call["tool"], ""), None)
                if entry["ok"] and isinstance(path, str):
                    path = PurePosixPath(path.strip()).as_posix()  # "./a.md" -> "a.md"
                    if path not in artifacts:
                        artifacts.append(path)
            trace.append(entry)
        return {"trace": trace, "pending": [], "artifacts": artifacts}

    # finalize ----------------------------------------------------------------------------

    async def finalize(self, state: SpecialistState, config: RunnableConfig) -> dict[str, Any]:
        """The forced final answer once the step limit is reached."""
        settings = settings_for(config)
        tools, _ = await _tools(self.spec, settings, config)
        model = await self._model(settings, self.spec.model_role)
        messages = worker_messages(
            self.spec,
            tools,
            _mode(settings, self.spec.model_role),
            dict(state),
            budget_tokens=_budget(settings, self.spec.model_role, [FinalAnswer]),
            closing=forced_answer_prompt(exhausted=True),
        )
        steps = state.get("steps", 0) + 1
        try:
            result = await ainvoke_structured(model, FinalAnswer, messages, config=config)
        except StructuredOutputError as err:
            return {
                "steps": steps,
                "usage": _structured_usage(state, err.usage),
                "output": "",
                "error": f"no final answer: {err}",
            }
        usage = _structured_usage(state, result.usage)
        answer = result.value
        if not answer.answer.strip():
            return {
                "steps": steps,
                "usage": usage,
                "output": "",
                "error": "no final answer: the answer was empty",
            }
        return {
            "steps": steps,
            "usage": usage,
            "output": answer.answer.strip(),
            "citations": clean_citations(answer.citations),
            "error": None,
        }

    # verify ------------------------------------------------------------------------------

    async def verify(self, state: SpecialistState, config: RunnableConfig) -> dict[str, Any]:
        """The reviewer's check of the answer against the task's acceptance criteria."""
        settings = settings_for(config)
        task = state.get("task") or {}
        output = state.get("output") or ""
        # What the answer may rest on: the dependency results it was given and the tool
        # results it saw (citations point into these).
        context = str(state.get("context") or "").strip()
        evidence = [f"Context from earlier tasks:\n{context}"] if context else []
        evidence += [
            f"{e.get('tool')}: {e.get('observation', '')}"
            for e in state.get("trace") or []
            if e.get("kind") == "call" and e.get("ok")
        ]
        messages = review_messages(
            task,
            output,
            state.get("citations") or [],
            evidence,
            budget_tokens=_budget(settings, "reviewer", [Verdict]),
        )
        model = await self._model(settings, "reviewer")
        try:
            result = await ainvoke_structured(model, Verdict, messages, config=config)
        except StructuredOutputError as err:
            # A reviewer that cannot produce a verdict must not fail good work: pass, noted.
            return {
                "verification": Verification(passed=True, feedback=f"not verified: {err}"),
                "usage": _structured_usage(state, err.usage),
            }
        usage = _structured_usage(state, result.usage)
        feedback = result.value.feedback.strip()
        if result.value.passed:
            return {"verification": Verification(passed=True, feedback=feedback), "usage": usage}
        failed = state.get("failed_verifications", 0) + 1
        reason = feedback or "the result does not meet the acceptance criteria"
        update: dict[str, Any] = {
            "verification": Verification(passed=False, feedback=reason),
            "failed_verifications": failed,
            "usage": usage,
        }
        if failed > settings.limits.max_verification_attempts:
            update["error"] = f"failed verification: {reason}"
            return update
        note = (
            f"Your answer was:\n{truncate(output, 1500)}\n\n"
            f"A reviewer rejected it: {reason}\nFix these problems, then give the final answer."
        )
        trace = [*(state.get("trace") or []), _note(state.get("steps", 0), note)]
        return {**update, "trace": trace, "round_steps": 0, "output": "", "citations": []}

    # routing -----------------------------------------------------------------------------

    def after_act(
        self, state: SpecialistState, config: RunnableConfig
    ) -> Literal["approve", "tools", "act", "finalize", "verify", "__end__"]:
        """Run (or first approve) the chosen calls, verify an answer, or step again."""
        settings = settings_for(config)
        pending = state.get("pending") or []
        if pending:
            if any(c.get("status") == "needs_approval" for c in pending):
                return "approve"
            return "tools"
        if state.get("output"):
            return "verify" if _verification_due(state, settings) else "__end__"
        # An unusable reply: try again, unless the steps are used up.
        return (
            "act" if state.get("round_steps", 0) < settings.limits.max_agent_steps else "finalize"
        )

    def after_tools(
        self, state: SpecialistState, config: RunnableConfig
    ) -> Literal["act", "finalize"]:
        """Another step while the step limit allows, else the forced answer."""
        settings = settings_for(config)
        return (
            "act" if state.get("round_steps", 0) < settings.limits.max_agent_steps else "finalize"
        )

    def after_finalize(
        self, state: SpecialistState, config: RunnableConfig
    ) -> Literal["verify", "__end__"]:
        """Verify a forced answer too; a missing answer ends the run with its error."""
        settings = settings_for(config)
        if state.get("error") or not state.get("output"):
            return "__end__"
        return "verify" if _verification_due(state, settings) else "__end__"

    def after_verify(self, state: SpecialistState) -> Literal["act", "__end__"]:
        """Rework after a failed check, unless it passed or the attempts are used up."""
        verification = state.get("verification")
        done = (verification is not None and verification["passed"]) or state.get("error")
        return "__end__" if done else "act"


def _invalid_step(err: StructuredOutputError) -> Decision:
    """A step whose reply never validated: tell the model (the step still counts)."""
    return Decision(
        notes=[f"Your last reply was not a valid step ({truncate(str(err), 300)}). Try again."]
    )


REPEAT_NOTICE = "You already made this exact call"


def _repeat_of(call: ToolCallRecord, trace: Sequence[TraceEntry]) -> TraceEntry | None:
    """The earlier identical call, unless a state-changing tool has run since."""
    key = call_key(call["tool"], call.get("args", {}))
    for entry in reversed(trace):
        if entry.get("kind") != "call":
            continue
        if call_key(entry.get("tool", ""), entry.get("args", {})) == key:
            if str(entry.get("observation", "")).startswith(REPEAT_NOTICE):
                continue  # an earlier repeat: quote the real result, not the notice
            return entry
        if entry.get("ok") and entry.get("tool") in MUTATING_TOOLS:
            return None
    return None


def _repeat_observation(trace: Sequence[TraceEntry], call: ToolCallRecord) -> str:
    earlier = _repeat_of(call, trace)
    previous = truncate(earlier.get("observation", ""), 400) if earlier else ""
    return (
        f"{REPEAT_NOTICE}; it was not repeated. Its result was:\n"
        f"{previous}\nUse it, try something different, or give the final answer."
    )


async def _run_tool(
    tool: BaseTool, call: ToolCallRecord, config: RunnableConfig
) -> tuple[str, bool]:
    """Run one tool; (observation, ok). Errors, including invalid arguments, are observations."""
    try:
        result = await tool.ainvoke(call.get("args", {}), config)
    except GraphBubbleUp:
        raise  # interrupts and parent commands are control flow, not tool errors
    except Exception as err:  # the model must see what went wrong and may fix it
        return f"Error from {tool.name}: {type(err).__name__}: {truncate(str(err), 800)}", False
    text = _observation(result)
    return text, not text.lower().startswith("error")


def parse_approval(answer: Any) -> tuple[bool, str]:
    """Read a tool-approval resume value: ``{"approved": bool, "feedback": str}`` (a bare
    bool is accepted too). Anything else counts as a rejection, so nothing runs by mistake."""
    if isinstance(answer, bool):
        return answer, ""
    if isinstance(answer, dict):
        approved = answer.get("approved")
        feedback = str(answer.get("feedback") or "").strip()
        if isinstance(approved, bool):
            return approved, feedback
        return False, feedback or f"unrecognised approval answer {answer!r}"
    return False, f"unrecognised approval answer {answer!r}"


# -- building and caching ---------------------------------------------------------------------

_cache: dict[tuple[str, ModelFactory], CompiledStateGraph[Any, Any, Any, Any]] = {}


def build_specialist(
    spec: AgentSpec, *, model_factory: ModelFactory | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled sub-graph for ``spec`` (cached per spec and model factory).

    Compiled without a checkpointer: invoked inside a parent node it inherits the parent's,
    so interrupts pause the whole run. ``model_factory`` replaces ``chat_model`` (tests).
    """
    factory = model_factory or chat_model
    key = (spec.model_dump_json(), factory)
    graph = _cache.get(key)
    if graph is None:
        nodes = _Nodes(spec, factory)
        builder = StateGraph(
            SpecialistState, input_schema=SpecialistInput, output_schema=SpecialistOutput
        )
        builder.add_node("act", nodes.act)
        builder.add_node("approve", nodes.approve)
        builder.add_node("tools", nodes.tools)
        builder.add_node("finalize", nodes.finalize)
        builder.add_node("verify", nodes.verify)
        builder.add_edge(START, "act")
        builder.add_conditional_edges("act", nodes.after_act)
        builder.add_edge("approve", "tools")
        builder.add_conditional_edges("tools", nodes.after_tools)
        builder.add_conditional_edges("finalize", nodes.after_finalize)
        builder.add_conditional_edges("verify", nodes.after_verify)
        graph = builder.compile(name=spec.name)
        if len(_cache) > 128:
            _cache.clear()
        _cache[key] = graph
    return graph
