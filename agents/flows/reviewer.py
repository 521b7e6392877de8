"""The reviewer as steps: the checks code can make first, then the model's verdict.

    check (code) -> verdict (model, one schema-constrained decision) -> report (code)

Code checks what can be checked without judgement: the workspace's tests are run in the
sandbox, and every knowledge-base citation in the work under review is looked up (the
document exists, has the heading, spans the lines). The model then gives a verdict on the
rest under a JSON schema. A failed code check fails the review whatever the model says (a
0.5B model calls almost everything correct); the report says which part is whose.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.flows.common import (
    Resources,
    add_usage,
    clip,
    decide,
    messages,
    run_pytest,
    sections_of,
    usage_of,
)
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.run_context import RunContext
from agents.steps import Verdict

WORK_CHARS = 2500
KB_CITATION = re.compile(r"\[([^\[\]#\n]+?\.(?:md|txt))(?:#([^\[\]\n]*?))? L(\d+)-(\d+)\]")
VERDICT_SYSTEM = (
    "You review work against its task. The checks run by code are facts: never contradict "
    "them. Decide whether the work does what the task asks, correctly and completely. If it "
    "does not, say in one or two sentences what is wrong and how to fix it."
)


class ReviewState(FlowState, total=False):
    checks: list[dict[str, Any]]
    """``{"name", "passed", "detail"}`` of each check code ran."""
    model_verdict: dict[str, Any] | None


def citation_problem(citation: str, kb_dir: Path) -> str | None:
    """Why a ``[path#heading Lx-y]`` citation does not hold in the knowledge base, or None."""
    match = KB_CITATION.fullmatch(citation.strip())
    if match is None:
        return None
    path, heading, start, end = match.group(1), match.group(2), int(match.group(3)), int(match.group(4))
    doc = (kb_dir / path).resolve()
    if not doc.is_relative_to(kb_dir.resolve()) or not doc.is_file():
        return f"{citation}: no such document"
    lines = doc.read_text(encoding="utf-8", errors="replace").splitlines()
    if not 1 <= start <= end <= len(lines):
        return f"{citation}: the document has {len(lines)} lines"
    if heading and not any(line.lstrip("#").strip() == heading.strip() for line in lines if line.startswith("#")):
        return f"{citation}: no heading {heading!r}"
    return None


def kb_citations(context: str) -> list[str]:
    """Every knowledge-base citation in the work: the sources listed and those in the text."""
    found: list[str] = []
    for section in sections_of(context):
        found += [s for s in section.sources if KB_CITATION.fullmatch(s.strip())]
    found += [m.group(0) for m in KB_CITATION.finditer(context)]
    return list(dict.fromkeys(found))


def _test_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py")
        if (p.name.startswith("test_") or p.name.endswith("_test.py")) and ".venv" not in p.parts
    )  # fmt: skip


class ReviewSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def check(self, state: ReviewState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The workspace's tests, run; the work's citations, looked up."""
        ctx = self.res.tools(runtime)
        checks: list[dict[str, Any]] = []
        root = await asyncio.to_thread(ctx.ensure_workspace)
        tests = await asyncio.to_thread(_test_files, root)
        if tests:
            run = await run_pytest(ctx, root, tests)
            detail = f"{', '.join(tests)}: {run.summary}"
            if not run.passed:
                detail += f"\n{clip(run.output, 1200)}"
            checks.append({"name": "tests (pytest, sandbox)", "passed": run.passed, "detail": detail})
        citations = kb_citations(str(state.get("context") or ""))
        if citations:
            problems = [
                p for c in citations
                if (p := await asyncio.to_thread(citation_problem, c, ctx.kb_dir)) is not None
            ]  # fmt: skip
            ok = len(citations) - len(problems)
            checks.append({
                "name": "citations (knowledge base)", "passed": not problems,
                "detail": f"{ok} of {len(citations)} found" + "".join(f"\n  {p}" for p in problems),
            })  # fmt: skip
        return {"checks": checks}

    async def verdict(self, state: ReviewState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model's verdict on the work, given the code's checks (one constrained call)."""
        task = state.get("task") or {}
        parts = [f"Task: {str(task.get('instruction') or state.get('goal') or '').strip()}"]
        if criteria := str(task.get("acceptance_criteria") or "").strip():
            parts.append(f"Done when: {criteria}")
        work = str(state.get("context") or "").strip()
        parts.append(f"Work to review:\n{clip(work, WORK_CHARS) if work else '(none was given)'}")
        checks = state.get("checks") or []
        if checks:
            parts.append("Checks run by code:\n" + "\n".join(
                f"- {c['name']}: {'passed' if c['passed'] else 'FAILED'} ({c['detail']})" for c in checks
            ))  # fmt: skip
        model = await self.res.model(runtime)
        value, usage, error = await decide(
            model, Verdict, messages(VERDICT_SYSTEM, "\n\n".join(parts)), get_config()
        )
        verdict = value.model_dump() if value is not None else {"error": error or "no verdict"}
        return {"model_verdict": verdict, "usage": add_usage(dict(state), *usage_of(usage)), "steps": 1}

    async def report(self, state: ReviewState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The review: each check code ran, then the verdict; failed checks decide it."""
        checks = state.get("checks") or []
        verdict = state.get("model_verdict") or {}
        failed = [c for c in checks if not c["passed"]]
        if not str(state.get("context") or "").strip() and not checks:
            return {"output": "", "error": "nothing to review: no earlier result and no tests in the workspace"}
        lines = []
        if checks:
            lines.append("Checks run by code:")
            lines += [f"- {c['name']}: {'passed' if c['passed'] else 'FAILED'} — {c['detail']}" for c in checks]
        else:
            lines.append("No check could be run by code (no tests in the workspace, no citations).")
        feedback = str(verdict.get("feedback") or "").strip()
        if failed:
            lines.append(f"\nVerdict: problems found — the {', '.join(c['name'] for c in failed)} failed.")
            if feedback:
                lines.append(f"Reviewer's note: {feedback}")
        elif "passed" in verdict:
            said = "correct" if verdict["passed"] else "problems found"
            lines.append(f"\nVerdict (the model's judgement): {said}." + (f" {feedback}" if feedback else ""))
        else:
            lines.append(f"\nVerdict: none from the model ({verdict.get('error', 'no verdict')}).")
        return {"output": "\n".join(lines), "citations": [], "error": None}

    def after_check(self, state: ReviewState) -> Literal["verdict", "report"]:
        """No work and no check: nothing for the model to judge."""
        return "verdict" if state.get("checks") or str(state.get("context") or "").strip() else "report"


def build_reviewer(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled reviewer flow."""
    steps = ReviewSteps(resources)
    builder = StateGraph(
        ReviewState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("check", steps.check)
    builder.add_node("verdict", steps.verdict)
    builder.add_node("report", steps.report)
    builder.add_edge(START, "check")
    builder.add_conditional_edges("check", steps.after_check)
    builder.add_edge("verdict", "report")
    builder.add_edge("report", "__end__")
    return builder.compile(name=name)
