"""The step loop of a specialist: act (one model step) → tools → act … → finalize.

- ``act``: one model step (structured ``AgentStep`` or native tool calls) → tool calls or a
  final answer; invalid replies become notes for the next step, never crashes.
- ``tools``: runs the calls; errors and bad arguments become observations.
- ``finalize``: after ``limits.max_agent_steps`` steps, one forced final-answer call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from agents.node import ask, node_start
from agents.prompts import TraceEntry, forced_answer_prompt, worker_messages
from agents.registry import AgentSpec
from agents.repeats import repeat_observation, repeat_of
from agents.run_context import RunContext, context_of, thread_id_of
from agents.state import ModelFactory, SpecialistState, add_usage
from agents.steps import (
    Decision,
    FinalAnswer,
    ToolCallRecord,
    clean_citations,
    from_native,
    from_structured,
    step_schema,
)
from agents.toolset import WRITE_TOOLS, for_requester, run_tool
from agents.trace import budget, mode, note
from agents.verification import verification_due
from core.models import StructuredOutputError
from core.text import truncate
from tools.registry import is_high_risk


class StepLoop:
    """The ``act``, ``tools`` and ``finalize`` nodes and the loop's routing, for one agent."""

    def __init__(self, spec: AgentSpec, model_factory: ModelFactory | None) -> None:
        self.spec = spec
        self.model_factory = model_factory

    async def act(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> dict[str, Any]:
        """One model step: choose tool calls or give the final answer."""
        node = node_start(runtime)
        settings, config = node.settings, node.config
        tools, unavailable = await node.tools(self.spec)
        by_name = {t.name: t for t in tools}
        tool_mode = mode(settings, self.spec.model_role)
        model = await node.model(self.spec.model_role, self.model_factory)
        steps = state.get("steps", 0) + 1
        round_steps = state.get("round_steps", 0) + 1
        trace = list(state.get("trace") or [])
        # An unreachable MCP server is noted once per task; the agent goes on without it.
        noted = {e.get("text") for e in trace if e.get("kind") == "note"}
        trace.extend(note(steps, n) for n in unavailable if n not in noted)
        view = {**state, "trace": trace}  # the model sees the note in this very step

        if tool_mode == "structured":
            schema = step_schema([t.name for t in tools])
            messages = worker_messages(
                self.spec,
                tools,
                tool_mode,
                view,
                budget_tokens=budget(settings, self.spec.model_role, [schema]),
            )
            step, usage = await ask(model, schema, messages, state, config)
            if isinstance(step, StructuredOutputError):
                decision = invalid_step(step)
            else:
                decision = from_structured(step, steps)
        else:
            bound: list[Any] = [*tools, FinalAnswer]
            messages = worker_messages(
                self.spec,
                tools,
                tool_mode,
                view,
                budget_tokens=budget(settings, self.spec.model_role, bound),
            )
            reply = await model.bind_tools(bound, tool_choice="any").ainvoke(messages, config)
            decision = from_native(cast(AIMessage, reply), steps, set(by_name))
            meta = cast(AIMessage, reply).usage_metadata
            n_in, n_out = (meta["input_tokens"], meta["output_tokens"]) if meta else (0, 0)
            usage = add_usage(state, n_in, n_out, 1)

        update: dict[str, Any] = {
            "steps": steps,
            "round_steps": round_steps,
            "pending": [],
            "usage": usage,
        }
        trace.extend(note(steps, n) for n in decision.notes)
        if decision.answer is not None:
            update.update(output=decision.answer, citations=decision.citations, error=None)
        else:
            review_on = settings.review.high_risk_tools
            calls = [self._classify(c, by_name, trace, review_on) for c in decision.calls]
            task = state.get("task") or {}
            update["pending"] = await for_requester(  # actions only for the request's customer
                calls, by_name, node.ctx.tools(thread_id_of(config)),
                f"{task.get('instruction') or ''}\n{state.get('goal') or ''}",
            )
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
        if repeat_of(call, trace) is not None:
            # Small models often repeat themselves; re-running helps no one, and a human who
            # rejected (or approved and saw run) an action is not asked about it again.
            return {**call, "status": "duplicate"}
        if review_on and is_high_risk(tool):
            return {**call, "status": "needs_approval"}
        return call

    async def tools(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> dict[str, Any]:
        """Run the pending calls in order; every outcome becomes an observation."""
        node = node_start(runtime)
        config = node.config
        tools, _ = await node.tools(self.spec)
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
                entry["observation"] = repeat_observation(trace, call)
            elif status == "needs_approval":  # unreachable via the graph; never run unasked
                entry["observation"] = "Error: this action needs approval and did not run."
            elif (tool := by_name.get(call["tool"])) is None:  # e.g. its MCP server went away
                entry["observation"] = f"Error: the tool {call['tool']!r} is unavailable now."
            else:
                entry["observation"], entry["ok"] = await run_tool(tool, call, config)
                path = call.get("args", {}).get(WRITE_TOOLS.get(call["tool"], ""), None)
                if entry["ok"] and isinstance(path, str):
                    path = PurePosixPath(path.strip()).as_posix()  # "./a.md" -> "a.md"
                    if path not in artifacts:
                        artifacts.append(path)
            trace.append(entry)
        return {"trace": trace, "pending": [], "artifacts": artifacts}

    async def finalize(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> dict[str, Any]:
        """The forced final answer once the step limit is reached."""
        node = node_start(runtime)
        settings = node.settings
        tools, _ = await node.tools(self.spec)
        model = await node.model(self.spec.model_role, self.model_factory)
        messages = worker_messages(
            self.spec,
            tools,
            mode(settings, self.spec.model_role),
            dict(state),
            budget_tokens=budget(settings, self.spec.model_role, [FinalAnswer]),
            closing=forced_answer_prompt(exhausted=True),
        )
        steps = state.get("steps", 0) + 1
        answer, usage = await ask(model, FinalAnswer, messages, state, node.config)
        if isinstance(answer, StructuredOutputError):
            return {"steps": steps, "usage": usage, "output": "", "error": f"no final answer: {answer}"}
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

    def after_act(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> Literal["approve", "tools", "act", "finalize", "verify", "__end__"]:
        """Run (or first approve) the chosen calls, verify an answer, or step again."""
        settings = context_of(runtime).settings
        pending = state.get("pending") or []
        if pending:
            if any(c.get("status") == "needs_approval" for c in pending):
                return "approve"
            return "tools"
        if state.get("output"):
            return "verify" if verification_due(state, settings) else "__end__"
        # An unusable reply: try again, unless the steps are used up.
        return self.after_tools(state, runtime)

    def after_tools(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> Literal["act", "finalize"]:
        """Another step while the step limit allows, else the forced answer."""
        limit = context_of(runtime).settings.limits.max_agent_steps
        return "act" if state.get("round_steps", 0) < limit else "finalize"

    def after_finalize(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> Literal["verify", "__end__"]:
        """Verify a forced answer too; a missing answer ends the run with its error."""
        settings = context_of(runtime).settings
        if state.get("error") or not state.get("output"):
            return "__end__"
        return "verify" if verification_due(state, settings) else "__end__"

    def after_verify(self, state: SpecialistState) -> Literal["act", "__end__"]:
        """Rework after a failed check, unless it passed or the attempts are used up."""
        verification = state.get("verification")
        done = (verification is not None and verification["passed"]) or state.get("error")
        return "__end__" if done else "act"


def invalid_step(err: StructuredOutputError) -> Decision:
    """A step whose reply never validated: tell the model (the step still counts)."""
    return Decision(
        notes=[f"Your last reply was not a valid step ({truncate(str(err), 300)}). Try again."]
    )
