"""The coder as short steps a small model can carry: write the module, write its tests, run
them in the sandbox, repair from the failure a bounded number of times.

The model writes code only (plain fenced blocks, not JSON: escaping code inside a JSON
string is where small models break). Code does the rest: it splits tests and example calls
out of the module, adds the test file's import, names and writes the files, runs pytest in
the sandbox and reads its verdict. The result *is* the files and the test run.

    write_module -> [write_tests] -> run_tests -> (passed | no repairs left) -> finish
                                        ^-- repair <--(failed)--'
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.flows import code_text
from agents.flows.common import (
    Resources,
    add_usage,
    clip,
    generate,
    messages,
    run_pytest,
    task_block,
)
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.run_context import RunContext
from tools.registry import build_tools

MAX_REPAIRS = 2
"""Repair rounds after a failed test run (the first fixes the module, the second the tests)."""
MODULE_TOKENS = 450
TESTS_TOKENS = 260
STOP = ["\n```\n", "\n```\r\n"]
"""Stop when the code block closes: the explanation small models add costs time, not value."""

MODULE_SYSTEM = (
    "You write Python modules. Reply with one ```python code block holding the whole module: "
    "imports, then the functions the task asks for, with type hints and a one-line "
    "docstring. Handle the edge cases the task mentions or implies (for text: letter "
    "case, spaces and punctuation; for numbers: zero, negatives; empty inputs). No tests, no print calls, no "
    "example usage, no explanation.\n\nExample of the style:\n```python\n"
    'def is_even(n: int) -> bool:\n    """Return True if n is even."""\n    return n % 2 == 0\n```'
)
TESTS_SYSTEM = (
    "You write pytest tests. Reply with one ```python code block: one test function with 4 "
    "to 6 different assert statements, on normal cases and the edge cases the task mentions "
    "or implies. Expected values must follow the task exactly. No docstrings, no "
    "explanation.\n\nExample of the style:\n```python\nfrom even import is_even\n\n\n"
    "def test_is_even():\n    assert is_even(2) is True\n    assert is_even(7) is False\n"
    "    assert is_even(0) is True\n    assert is_even(-4) is True\n```"
)
FIX_MODULE_SYSTEM = (
    "You fix Python modules. The tests below failed. Reply with one ```python code block "
    "holding the whole corrected module. No tests, no explanation."
)
FIX_TESTS_SYSTEM = (
    "You fix pytest tests. The module follows the task, but some tests failed: their "
    "expected values may be wrong. Reply with one ```python code block holding the whole "
    "corrected test file. No explanation."
)


class CoderState(FlowState, total=False):
    module_file: str
    module_code: str
    names: list[str]
    test_file: str
    test_code: str
    run_output: str
    summary: str
    passed: bool
    repairs: int
    problem: str
    """Why the last reply was unusable (no code, syntax error); shown to the next call."""


def _test_failure(state: CoderState) -> str:
    """The error of a task whose tests never passed: pytest's verdict and what failed."""
    output = state.get("run_output", "")
    checks = code_text.failed_checks(output)
    detail = "; ".join(checks) if checks else code_text.failure_excerpt(output, 600)
    return clip(
        f"the tests of {state['module_file']} FAILED in the sandbox "
        f"({state.get('summary') or 'no summary'}): {detail}",
        900,
    )


def _fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class CoderSteps:
    """The coder sub-graph's nodes; ``model`` and ``tools`` resolve per-run resources."""

    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def _generate(
        self,
        state: CoderState,
        runtime: Runtime[RunContext],
        system: str,
        user: str,
        max_tokens: int,
    ) -> tuple[str, dict[str, Any]]:
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(system, user), get_config(), max_tokens=max_tokens, stop=STOP
        )
        return text, {"usage": add_usage(dict(state), n_in, n_out)}

    def _task(self, state: CoderState) -> str:
        return task_block(dict(state))

    # nodes --------------------------------------------------------------------------------

    async def write_module(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes the module; tests it wrote along with it are kept for later."""
        task = self._task(state)
        named = code_text.module_name(task, [])
        user = task + (f"\n\nThe module is saved as {named}." if named != "solution.py" else "")
        if state.get("problem"):
            user += f"\n\nYour last reply was unusable: {state['problem']}. Write the module again."
        reply, update = await self._generate(state, runtime, MODULE_SYSTEM, user, MODULE_TOKENS)
        split = code_text.split_module(code_text.code_of(reply))
        steps = state.get("steps", 0) + 1
        if split.error or not split.names:
            problem = split.error or "it defines no function or class"
            return {**update, "steps": steps, "problem": problem, "module_code": split.module}
        filename = code_text.module_name(task, split.names)
        update.update(
            steps=steps, problem="", module_file=filename, module_code=split.module,
            names=split.names, test_file=f"test_{filename}", test_code="",
        )  # fmt: skip
        if split.tests:
            text, error = code_text.test_file(split.tests, filename, split.names)
            if error is None and code_text.count_tests(text):
                update["test_code"] = text
        return update

    async def write_tests(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes tests for the module; code adds the import and drops stray calls."""
        filename = state["module_file"]
        user = (
            f"{self._task(state)}\n\nModule {filename}:\n{_fence(state['module_code'])}\n\n"
            f"Write {state['test_file']}."
        )
        reply, update = await self._generate(state, runtime, TESTS_SYSTEM, user, TESTS_TOKENS)
        text, error = code_text.test_file(code_text.code_of(reply), filename, state["names"])
        update["steps"] = state.get("steps", 0) + 1
        if error is not None:
            # No usable tests: a smoke test still proves the module imports.
            names = ", ".join(state["names"])
            text = (
                f"from {filename.removesuffix('.py')} import {names}\n\n\n"
                f"def test_defined():\n    assert callable({state['names'][0]})\n"
            )
        update["test_code"] = text
        return update

    async def run_tests(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Write both files to the workspace and run pytest on them in the sandbox."""
        ctx = self.res.tools(runtime)
        tools = {t.name: t for t in build_tools(["write_file"], ctx)}
        artifacts = list(state.get("artifacts") or [])
        for path, content in ((state["module_file"], state["module_code"]),
                              (state["test_file"], state["test_code"])):  # fmt: skip
            await tools["write_file"].ainvoke({"path": path, "content": content})
            if path not in artifacts:
                artifacts.append(path)
        root = await asyncio.to_thread(ctx.ensure_workspace)
        run = await run_pytest(ctx, root, [state["test_file"]])
        return {
            "artifacts": artifacts, "run_output": clip(run.output, 6000), "summary": run.summary,
            "passed": run.passed,
        }  # fmt: skip

    async def repair(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Fix the module (first repair) or the tests (later ones) from pytest's output."""
        repairs = state.get("repairs", 0) + 1
        output = state.get("run_output", "")
        checks = code_text.failed_checks(output)
        failure = "\n".join(f"- {c}" for c in checks) or code_text.failure_excerpt(output, 800)
        fix_tests = repairs > 1
        if fix_tests:
            user = (
                f"{self._task(state)}\n\nModule {state['module_file']}:\n"
                f"{_fence(state['module_code'])}\n\nTests {state['test_file']}:\n"
                f"{_fence(state['test_code'])}\n\nThese checks fail:\n{failure}\n\n"
                f"Write the corrected {state['test_file']}."
            )
        else:
            user = (
                f"{self._task(state)}\n\nModule {state['module_file']}:\n"
                f"{_fence(state['module_code'])}\n\nThese checks of it fail:\n{failure}\n\n"
                f"Write the corrected {state['module_file']}."
            )
        system = FIX_TESTS_SYSTEM if fix_tests else FIX_MODULE_SYSTEM
        reply, update = await self._generate(state, runtime, system, user, MODULE_TOKENS)
        update.update(repairs=repairs, steps=state.get("steps", 0) + 1)
        code = code_text.code_of(reply)
        if fix_tests:
            text, error = code_text.test_file(code, state["module_file"], state["names"])
            if error is None:
                update["test_code"] = text
            return update
        split = code_text.split_module(code)
        if split.error is None and set(state["names"]) <= set(split.names):
            update["module_code"] = split.module
        return update

    async def finish(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The result: the files and the test run, as the task's output."""
        if not state.get("module_file"):
            return {"output": "", "error": f"no usable module: {state.get('problem') or 'no code'}"}
        passed = bool(state.get("passed"))
        verdict = "passed" if passed else "FAILED"
        lines = [
            f"Wrote {state['module_file']} and {state['test_file']}; "
            f"the tests {verdict} in the sandbox ({state.get('summary') or 'no summary'}).",
            "", f"{state['module_file']}:", _fence(state["module_code"]),
            "", f"{state['test_file']}:", _fence(state["test_code"]),
            "", "Test run (pytest -q):", "```text", clip(state.get("run_output", ""), 1500), "```",
        ]  # fmt: skip
        return {
            "output": "\n".join(lines),
            "citations": [],
            # Tests that never passed make a failed task (the files and output stay in its
            # record): the supervisor escalates it, and a failure is never cached as done.
            "error": None if passed else _test_failure(state),
            "verification": {"passed": passed, "feedback": f"pytest: {state.get('summary', '')}"},
        }

    # routing ------------------------------------------------------------------------------

    def after_module(
        self, state: CoderState
    ) -> Literal["write_module", "write_tests", "run_tests", "finish"]:
        if not state.get("module_file"):
            return "write_module" if state.get("steps", 0) < 2 else "finish"
        return "run_tests" if state.get("test_code") else "write_tests"

    def after_run(self, state: CoderState) -> Literal["repair", "finish"]:
        if state.get("passed") or state.get("repairs", 0) >= MAX_REPAIRS:
            return "finish"
        return "repair"


def build_coder(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled coder flow (no checkpointer: it inherits the parent's)."""
    steps = CoderSteps(resources)
    builder = StateGraph(
        CoderState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("write_module", steps.write_module)
    builder.add_node("write_tests", steps.write_tests)
    builder.add_node("run_tests", steps.run_tests)
    builder.add_node("repair", steps.repair)
    builder.add_node("finish", steps.finish)
    builder.add_edge(START, "write_module")
    builder.add_conditional_edges("write_module", steps.after_module)
    builder.add_edge("write_tests", "run_tests")
    builder.add_conditional_edges("run_tests", steps.after_run)
    builder.add_edge("repair", "run_tests")
    builder.add_edge("finish", "__end__")
    return builder.compile(name=name)
