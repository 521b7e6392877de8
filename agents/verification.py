"""Verification: the reviewer model checks an answer against the task's acceptance criteria;
a failure sends the task back for rework a bounded number of times."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.node import ask, node_start
from agents.prompts import review_messages
from agents.run_context import RunContext
from agents.state import ModelFactory, SpecialistState, Verification
from agents.steps import Verdict
from agents.trace import budget, note
from core.models import StructuredOutputError
from core.settings import Settings
from core.text import truncate


def verification_due(state: SpecialistState, settings: Settings) -> bool:
    """Whether this answer is checked: verification on and the task has criteria."""
    task = state.get("task") or {}
    return settings.verify_results and bool(str(task.get("acceptance_criteria") or "").strip())


class Verifier:
    """The ``verify`` node of one agent's sub-graph."""

    def __init__(self, model_factory: ModelFactory | None) -> None:
        self.model_factory = model_factory

    async def verify(
        self, state: SpecialistState, runtime: Runtime[RunContext]
    ) -> dict[str, Any]:
        """The reviewer's check of the answer against the task's acceptance criteria."""
        node = node_start(runtime)
        settings = node.settings
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
            budget_tokens=budget(settings, "reviewer", [Verdict]),
        )
        model = await node.model("reviewer", self.model_factory)
        verdict, usage = await ask(model, Verdict, messages, state, node.config)
        if isinstance(verdict, StructuredOutputError):
            # A reviewer that cannot produce a verdict must not fail good work: pass, noted.
            return {
                "verification": Verification(passed=True, feedback=f"not verified: {verdict}"),
                "usage": usage,
            }
        feedback = verdict.feedback.strip()
        if verdict.passed:
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
        rework = (
            f"Your answer was:\n{truncate(output, 1500)}\n\n"
            f"A reviewer rejected it: {reason}\nFix these problems, then give the final answer."
        )
        trace = [*(state.get("trace") or []), note(state.get("steps", 0), rework)]
        return {**update, "trace": trace, "round_steps": 0, "output": "", "citations": []}
