"""A scripted team for supervisor tests: the test model answering by schema name.

Task instructions carry a marker like ``[[a]]``; worker steps answer ``result-a`` so tests
can see which task produced what, count calls per task and inject faults per task.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from core.models import TestChatModel

MARK = re.compile(r"\[\[(\w+)\]\]")


def task(id: str, agent: str = "writer", deps: Sequence[str] = (), criteria: str = "") -> dict[str, Any]:
    """A plan task whose instruction carries its marker."""
    return {"id": id, "agent": agent, "instruction": f"Do part {id} [[{id}]]",
            "acceptance_criteria": criteria, "depends_on": list(deps)}


def text_of(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


class ScriptedTeam:
    """Scripted answers for planner, workers, assessor, reviewer and synthesizer."""

    def __init__(self, plans: Sequence[dict[str, Any]] | Callable[[str], dict[str, Any]],
                 *, latency_s: float = 0.0, tokens: tuple[int, int] | None = None) -> None:
        self._plans = plans
        self._plan_calls = 0
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        """Worker steps per task marker."""
        self.prompts: list[str] = []
        """Every worker prompt, for context checks."""
        self.planner_prompts: list[str] = []
        self.fail: dict[str, Callable[[int], Any]] = {}
        """marker -> f(call number) returning an error to raise, or None to answer."""
        self.assessment: dict[str, Any] = {"decision": "continue", "reason": "on track"}
        self.verdicts: Callable[[str], dict[str, Any]] = lambda prompt: {"passed": True, "feedback": ""}
        self.model = TestChatModel(
            latency_s=latency_s,
            tokens_in=tokens[0] if tokens else None,
            tokens_out=tokens[1] if tokens else None,
            responses={
                "Plan": self._plan, "AgentStep": self._step, "FinalAnswer": self._final,
                "Assessment": lambda m: self.assessment, "Verdict": lambda m: self.verdicts(text_of(m)),
            },
            text=lambda m: "SYNTHESIS: " + " | ".join(sorted(set(re.findall(r"result-\w+", text_of(m))))),
        )

    def _plan(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        prompt = text_of(messages)
        with self.lock:
            self.planner_prompts.append(prompt)
            n = self._plan_calls
            self._plan_calls += 1
        if callable(self._plans):
            return self._plans(prompt)
        return self._plans[min(n, len(self._plans) - 1)]

    def _marker(self, messages: Sequence[BaseMessage]) -> str:
        # The task prompt is the first human message; dependency results come after it.
        human = [m for m in messages if m.type == "human"]
        found = MARK.search(str(human[0].content)) if human else None
        return found.group(1) if found else "?"

    def _step(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        marker = self._marker(messages)
        with self.lock:
            self.calls[marker] += 1
            n = self.calls[marker]
            self.prompts.append(text_of(messages))
        if marker in self.fail and (error := self.fail[marker](n)) is not None:
            raise error
        return {"thought": "done", "action": "final_answer", "action_input": {},
                "answer": f"result-{marker}", "citations": []}

    def _final(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        return {"answer": f"result-{self._marker(messages)}", "citations": []}


def context_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run context (setting overrides) of a test's config.

    The tests' config helpers keep a run's overrides beside its thread id, under
    ``configurable["settings"]``; the product reads them only from the run's context, so
    every start of a run passes ``context=context_of(cfg)``. Resumes and forks of a
    supervisor thread pass none: the thread remembers its settings.
    """
    return dict(config["configurable"]["settings"])
