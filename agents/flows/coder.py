"""The coder as short steps a small model can carry: write the module and its tests, run
them in the sandbox, and repair from evidence a bounded number of times.

The model writes code only (plain fenced blocks, not JSON: escaping code inside a JSON
string is where small models break). Code does the rest: it splits tests and example calls
out of the module, adds the test file's import, names and writes the files, runs pytest in
the sandbox and reads its verdict. The result *is* the files and the test run.

    write_module (+ tests, in parallel) -> [write_tests] -> run_tests -> passed -> finish
                                                  ^                  '-> failed -> diagnose
                                                  '------ repair <-------------------'

A small model's own tests are wrong about as often as its module, so a failure is not
repaired in a fixed order: ``diagnose`` samples a second, independent implementation once,
runs the tests on it and probes what both return for each failing call. A second module
that passes more tests replaces the first; a failing check on which both implementations
agree points at the test (the tests are repaired, shown the returned values); otherwise the
module is repaired. The best (module, tests) pair seen is kept: a repair that makes more
tests fail is undone. Only a real pytest run of the files as written counts as passed.

A project plan's last coder task is its integration (``agents/flows/project.py``): the
design files, every module's tests run together, a failing module sent back through the
flow above (from its kept files), and the project's README.

    integrate -> failing module? -> repair_project_module (the flow above) -> integrate
              '-> finish_project
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.flows import code_checks, code_spec, code_text, project
from agents.flows.common import (
    PytestRun,
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
from core.models.judgment import Example, Option, choose
from tools.base import ToolInputError
from tools.context import ToolContext
from tools.paths import open_file, read_bounded, write_text
from tools.registry import build_tools
from tools.sandbox import run_sandboxed

log = logging.getLogger(__name__)

MAX_REPAIRS = 3
"""Model calls after the first failed run: the second implementation and up to two fixes."""
MAX_DIAGNOSES = 5
"""Failed runs diagnosed at most (a guard: each free outcome is followed by a run)."""
ALT_TEMPERATURE = 0.7
ALT_TEMPERATURES = (ALT_TEMPERATURE, 1.0)
"""Sampling temperatures of the second implementation (the first is the run's, usually 0),
tried in turn until one differs from the module: the same code agreeing with itself is no
evidence, and a shared bug would make a right test look wrong."""
UNUSABLE = "# no usable second implementation\n"
MODULE_TOKENS = 768
"""Room for a whole module: the reply stops at its closing fence, so a higher cap costs
nothing for short modules, and a module cut off at the cap is rejected, not run."""
TESTS_TOKENS = 300
STOP = ["\n```\n", "\n```\r\n"]
"""Stop when the code block closes: the explanation small models add costs time, not value."""

# The prompts hold no example code: a small model copies an example's names into its
# module and tests (a prompt's example function was seen in written modules and their
# tests). What a reply should look like is said in words, and the names it must use come
# from the task itself (see ``_interface``).
MODULE_SYSTEM = (
    "You write Python modules. Reply with one ```python code block holding the whole module: "
    "imports, then the functions and classes the task asks for, with type hints and a "
    "one-line docstring. Use exactly the names, parameters and file name the task states. "
    "Handle the edge cases the task mentions or implies, such as empty inputs. No tests, no "
    "print calls, no example usage, no explanation."
)
TESTS_SYSTEM = (
    "You write pytest tests. Reply with one ```python code block: one test function with 3 "
    "to 5 different assert statements, each comparing one call's result with the exact "
    "expected value (assert f(x) == y), on short, simple inputs whose result you are sure "
    "of, including an edge case the task mentions or implies. Expected values must follow "
    "the task exactly. No docstrings, no explanation."
)
FIX_MODULE_SYSTEM = (
    "You fix Python modules. The tests below failed. Reply with one ```python code block "
    "holding the whole corrected module, with the same names and parameters. No tests, no "
    "explanation."
)
MAX_PROJECT_REPAIRS = 2
"""Modules an integration task sends back to the module flow (each at most once)."""
MAX_MODULE_TRIES = 3
"""Module replies read before the task fails for want of a usable module."""
MAX_TEST_TRIES = 2
"""Test files written before a task without stated examples gives up for lack of evidence."""
GIVEN_CODE_QUESTION = "What does the goal ask to do with the code it gives?"
GIVEN_CODE_OPTIONS = (
    Option("fix", "Fix it: the goal says it behaves wrongly"),
    Option("change", "Change or extend it: the goal asks for new behaviour"),
    Option("use", "Use it as it is, in new code"),
)
GIVEN_CODE_EXAMPLES = (
    Example("Goal: def area(r):\n    return 3.14 * r * 2\narea(1) gives 6.28 but a circle of radius 1 "
            "has area 3.14. Please correct it.\nQuestion: " + GIVEN_CODE_QUESTION, "fix"),
    Example("Goal: Here is my function:\ndef greet(name):\n    return 'Hi ' + name\nAdd an optional "
            "greeting so greet('Bo', 'Hello') returns 'Hello Bo'.\nQuestion: " + GIVEN_CODE_QUESTION, "change"),
    Example("Goal: def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))\nUsing "
            "is_prime, write primes_below(n) returning the primes below n.\nQuestion: "
            + GIVEN_CODE_QUESTION, "use"),
    Example("Goal: count_vowels('APPLE') returns 0 instead of 2:\ndef count_vowels(s):\n    return "
            "sum(c in 'aeiou' for c in s)\nQuestion: " + GIVEN_CODE_QUESTION, "fix"),
)
"""Written for this question (not from any dataset): what a goal that gives code wants. Only
"fix" makes the calls the goal mentions evidence of a bug."""
OPTION_SYSTEM = (
    "You read a user's request about Python code and answer the question about it with the "
    "letter of one option."
)
MAX_DISPUTED_SHARE = 1 / 3
"""At most this share of the tests may be set aside as disputed; more means the tests as a
whole are doubtful, and a fresh set is written instead. 0 turns setting aside off."""
MIN_PASSING = 3
"""Tests that must really pass beside the disputed ones. Two implementations can share a
bug (measured: is_balanced('([)]') True in both, the test right), so a pass that sets a
check aside must rest on several real ones."""


class CoderState(FlowState, total=False):
    module_file: str
    module_code: str
    names: list[str]
    test_file: str
    test_code: str
    draft_tests: str
    """Tests written from the task alone, next to the module, before its names were known."""
    run_output: str
    summary: str
    passed: bool
    failed: int
    """Tests that failed in the last run (every test when the file did not load)."""
    repairs: int
    problem: str
    """Why the last reply was unusable (no code, syntax error); shown to the next call."""
    alt_code: str
    """The second, independent implementation (sampled once, at the first failure)."""
    fix: str
    """What diagnose chose: ``module`` (repair it), ``retest`` (fresh tests) or ``""``."""
    evidence: list[str]
    """The failing checks with what the module returned, shown to the repair."""
    best: dict[str, Any] | None
    """The best pair seen: module_code, test_code, failed, run_output, summary."""
    disputed: list[str]
    """Checks set aside (marked xfail, kept in the file): both implementations return the
    same other value; shown in the task's output with that value."""
    notes: list[str]
    """What the repairs did (second implementation used, a repair undone)."""
    diagnoses: int
    retests: int
    """Fresh test files written after the first ones were found doubtful."""
    module_tries: int
    """Module replies read so far (each may be rejected for a ``problem``)."""
    test_tries: int
    """Test files the model wrote after the module (none usable ends the task: no evidence)."""
    kept: bool
    """This attempt started from the files an earlier attempt of the task left."""
    project_failing: list[str]
    """Integration: the modules whose interface check or tests failed in the last run."""
    project_repaired: list[str]
    """Integration: the modules sent back to the module flow so far (each once)."""
    project_problems: dict[str, str]
    """Integration: module file -> what its interface check found (missing, other names)."""
    reported: dict[str, str]
    """For a bug report: each call the goal mentions -> what the given (buggy) code returns
    (``repr``, or ``raises X``). A module returning all of them still has the bug; a test
    expecting one of them checks for the bug. Empty when the goal is not a bug report."""


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


def evidence_of(test_code: str) -> str:
    """How strong a test file is as evidence: the task's stated examples it checks and the
    model-written tests beside them (whose expectations are the model's guesses, checked
    against a second implementation only when they fail)."""
    names = code_checks.test_names(test_code)
    stated = sum(1 for n in names if code_spec.is_stated(n))
    written = len(names) - stated
    if stated and written:
        return f"{stated} example(s) the task states and {written} model-written test(s)"
    if stated:
        return f"{stated} example(s) the task states"
    if written:
        return f"model-written tests only ({written})"
    return "none"


def _read_kept(root: Path, name: str) -> str:
    """A file an earlier attempt left in the workspace ('' when absent or not a plain file);
    the path is confined to the workspace and a symlink is never followed."""
    try:
        with open_file(root, name) as opened:
            return read_bounded(opened, 200_000).decode("utf-8", "replace")
    except (OSError, ToolInputError):
        return ""


def _same_value(got: str | None, reported: str) -> bool:
    """Whether a value (a ``repr``) is the reported one; numbers within 1% count as the same
    (rounding ``33.333…`` to ``33.33`` keeps the bug)."""
    if got == reported:
        return True
    try:
        a, b = float(got or ""), float(reported)
    except ValueError:
        return False
    return abs(a - b) <= 0.01 * max(abs(a), abs(b))


def _write_files(root: Path, files: dict[str, str]) -> None:
    # Walked from the workspace's descriptor: sandboxed code of another task may have
    # planted a symlink or renamed a directory on the way (tools/paths.py).
    for name, content in files.items():
        write_text(root, name, content)


def _fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


_COUNT = re.compile(r"(\d+) (failed|error|errors)\b")


def failed_count(run: PytestRun, test_code: str) -> int:
    """Tests that did not pass: pytest's failed and error counts; every test when the run
    reported neither (the file did not load, the run was stopped)."""
    if run.passed:
        return 0
    counted = sum(int(n) for n, _ in _COUNT.findall(run.summary))
    if "passed" not in run.summary:  # a collection error stops every test of the file
        counted = max(counted, code_text.count_tests(test_code))
    return max(counted, 1)


def choose_fix(found: list[code_checks.Verdict], state: CoderState) -> str:
    """What to do about the failing checks: ``tests`` (set the disputed ones aside) when
    every failing check is disputed — the second implementation returns the same value —
    and enough tests really pass; ``retest`` (write fresh tests, once) when the disputed
    checks are too many; otherwise ``module`` (repair it).

    When the task states examples and the module meets every one of them (a failing stated
    example is never disputed, so it makes the fix ``module``), the share limit is waived:
    the goal's own examples outweigh the model's guessed expectations that two independent
    implementations agree against."""
    failed = state.get("failed", 0)
    test_code = state.get("test_code", "")
    total = code_text.count_tests(test_code)
    disputed = [v for v in found if v.side == "tests"]
    if not found or len(disputed) < len(found) or len(found) < failed:
        return "module"
    stated = sum(1 for n in code_checks.test_names(test_code) if code_spec.is_stated(n))
    few = len(disputed) <= MAX_DISPUTED_SHARE * total or (MAX_DISPUTED_SHARE > 0 and stated > 0)
    if few and total - len(disputed) >= MIN_PASSING:
        return "tests"
    return "retest" if not state.get("retests") else "module"


class CoderSteps:
    """The coder sub-graph's nodes; ``model`` and ``tools`` resolve per-run resources."""

    def __init__(self, resources: Resources) -> None:
        self.res = resources
        self.graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
        """The compiled coder flow itself: an integration task sends a module back to it."""

    async def _generate(
        self,
        runtime: Runtime[RunContext],
        system: str,
        user: str,
        max_tokens: int,
        temperature: float | None = None,
    ) -> tuple[str, int, int]:
        model = await self.res.model(runtime)
        if temperature is not None:
            model = cast(BaseChatModel, model.bind(temperature=temperature))
        return await generate(
            model, messages(system, user), get_config(), max_tokens=max_tokens, stop=STOP
        )

    def _task(self, state: CoderState) -> str:
        block = task_block(dict(state))
        goal = str(state.get("goal") or "").strip()
        instruction = str((state.get("task") or {}).get("instruction") or "").strip()
        if goal and goal not in instruction and self._spec(state).given_code:
            # The planner's instruction may paraphrase the request: code the user gave is
            # read from the request itself.
            block += f"\n\nThe user's request:\n{clip(goal, 2500)}"
        return block

    def _spec(self, state: CoderState) -> code_spec.CodeSpec:
        """What the task and the goal state about the module (names, file, examples, code)."""
        instruction = str((state.get("task") or {}).get("instruction") or "")
        criteria = str((state.get("task") or {}).get("acceptance_criteria") or "")
        return code_spec.task_spec(f"{instruction}\n{criteria}", str(state.get("goal") or ""))

    def _siblings(self, state: CoderState) -> list[str]:
        """The project modules this task's module uses (their tests may import them too)."""
        brief = code_spec.module_brief(str((state.get("task") or {}).get("instruction") or ""))
        return [file.removesuffix(".py") for file, _ in brief.uses] if brief is not None else []

    def _file(self, state: CoderState, names: list[str]) -> str:
        spec = self._spec(state)
        return spec.file or code_text.module_name(self._task(state), names or spec.names)

    def _interface(self, state: CoderState) -> str:
        """The stated interface and starting code, said to the model in the task's own names."""
        spec = self._spec(state)
        named = self._file(state, [])
        parts = []
        if spec.signatures or spec.classes:
            parts.append("The module must define exactly these, with these parameters:\n"
                         + "\n".join(f"- {line}" for line in code_spec.brief(spec)))
        if spec.given_code:
            parts.append("Start from this code; keep its names and parameters:\n"
                         + _fence(spec.given_code))  # fmt: skip
        if state.get("reported"):
            parts.append("The given code has the bug the task reports: "
                         + "; ".join(f"{c} returns {v}" for c, v in state["reported"].items())
                         + ". The fixed module must not.")  # fmt: skip
        if named != "solution.py":
            parts.append(f"The module is saved as {named}.")
        return "\n\n".join(parts)

    def _module_prompt(self, state: CoderState) -> str:
        user = self._task(state)
        interface = self._interface(state)
        if interface:
            user += "\n\n" + interface
        if state.get("problem"):
            if state.get("module_code"):
                user += f"\n\nYour last module:\n{_fence(state['module_code'])}"
            user += f"\n\nIt was unusable: {state['problem']}. Write the whole module again."
        return user

    def _module_problem(self, state: CoderState, split: code_text.SplitCode,
                        cut: str | None) -> str:
        """Why a module reply cannot be run as the task's module (``""`` when it can)."""
        if split.error:
            return split.error
        if cut is not None:
            return (f"the reply was cut off inside {cut} (too long): write a shorter module"
                    if cut != "the code" else "the reply was cut off (too long)")
        if not split.names:
            return "it defines no function or class"
        spec = self._spec(state)
        brief = code_spec.module_brief(str((state.get("task") or {}).get("instruction") or ""))
        found = (code_spec.brief_problems(split.module, brief, str(state.get("goal") or "")) if brief
                 else code_spec.problems(split.module, spec))  # fmt: skip
        if spec.given_code and code_checks.same_code(split.module, spec.given_code):
            found.append("it is the given code unchanged: make the change the task asks for")
        return "; ".join(found)

    async def _kept_files(self, state: CoderState, runtime: Runtime[RunContext]) -> tuple[str, str, str] | None:
        """The module and test file an earlier attempt of this task left in the workspace
        (named in the feedback the retry was given), or None."""
        feedback = str(state.get("feedback") or "")
        if not feedback:
            return None
        root = await asyncio.to_thread(self.res.tools(runtime).ensure_workspace)
        for match in code_text.PY_FILE.finditer(feedback):
            stem = match.group(1)
            if stem.startswith("test"):
                continue
            module = await asyncio.to_thread(_read_kept, root, f"{stem}.py")
            tests = await asyncio.to_thread(_read_kept, root, f"test_{stem}.py")
            if module and tests:
                return f"{stem}.py", module, tests
        return None

    async def _run(
        self, ctx: ToolContext, module: tuple[str, str], tests: tuple[str, str]
    ) -> PytestRun:
        """Write the module and the test file to the workspace and run pytest on them."""
        tools = {t.name: t for t in build_tools(["write_file"], ctx)}
        for path, content in (module, tests):
            await tools["write_file"].ainvoke({"path": path, "content": content})
        root = await asyncio.to_thread(ctx.ensure_workspace)
        return await run_pytest(ctx, root, [tests[0]])

    # nodes --------------------------------------------------------------------------------

    async def write_module(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes the module and, in parallel, tests from the task alone (the
        server serves both at once); tests it wrote along with the module are kept too.

        A retry of the task starts from the files its earlier attempt left (no model call):
        they are run again and repaired. A reply that lacks a stated name, takes other
        parameters or was cut off at the token cap is rejected and written again."""
        first = not state.get("steps") and not state.get("module_tries")
        early: dict[str, Any] = {}
        if first and "reported" not in state:
            early["reported"] = await self._reported(state, runtime)
            state = cast(CoderState, {**state, **early})
        if first and not state.get("kept"):
            kept = await self._kept_files(state, runtime)
            if kept is not None:
                started = self._from_kept(state, *kept)
                # Kept files that still have the reported bug are no start: write it again.
                if started is not None and not (
                    state.get("reported") and await self._still_buggy(state, runtime, started["module_code"])
                ):
                    return {**early, **started}
        usage = dict(state)
        # A reply rejected once is asked for again at a sampling temperature: the greedy
        # reply to the same prompt tends to repeat the rejected module.
        again = ALT_TEMPERATURE if state.get("problem") else None
        calls = [self._generate(runtime, MODULE_SYSTEM, self._module_prompt(state), MODULE_TOKENS, again)]
        draft = state.get("draft_tests", "")
        if first:
            named = self._file(state, [])
            spec = self._spec(state)
            user = f"{self._task(state)}\n\nThe module is {named}. Write test_{named}."
            if spec.names:
                stem = named.removesuffix(".py")
                user += f"\nImport what you test: from {stem} import {', '.join(spec.names)}"
            calls.append(self._generate(runtime, TESTS_SYSTEM, user, TESTS_TOKENS))
        replies = await asyncio.gather(*calls)
        for _, n_in, n_out in replies:
            usage["usage"] = add_usage(usage, n_in, n_out)
        if len(replies) > 1:
            draft = code_text.code_of(replies[1][0])
        tries = state.get("module_tries", 0) + 1
        steps = state.get("steps", 0) + len(replies)
        update: dict[str, Any] = {**early, "usage": usage["usage"], "draft_tests": draft,
                                  "steps": steps, "module_tries": tries}  # fmt: skip
        reply, _, n_out = replies[0]
        split = code_text.split_module(code_text.code_of(reply))
        cut = code_text.cut_inside(reply, n_out >= MODULE_TOKENS)
        problem = self._module_problem(state, split, cut)
        if not problem and state.get("reported"):
            problem = await self._still_buggy(state, runtime, split.module)
        if problem:
            log.debug("coder module rejected: %s", problem)
            # Code that parses is shown to the next try (and to the reader if none succeeds).
            return {**update, "problem": problem, "module_code": "" if split.error else split.module}
        filename = self._file(state, split.names)
        update.update(
            problem="", module_file=filename, module_code=split.module,
            names=split.names, test_file=f"test_{filename}", test_code="",
        )  # fmt: skip
        stated = code_spec.stated_tests(self._spec(state), split.names)
        for tests in (draft, split.tests):
            if tests:
                text, error = code_text.test_file(tests, filename, split.names, stated,
                                                  state.get("reported"), self._siblings(state))  # fmt: skip
                if error is None and code_text.count_tests(text):
                    update["test_code"] = text
                    break
        return update

    async def _reported(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, str]:
        """For a goal that gives code and mentions calls of it: whether it reports a bug (the
        model's judgment, three labelled options) and, if so, what the given code returns
        for each mentioned call (run in the sandbox). ``{}`` otherwise."""
        spec = self._spec(state)
        if not spec.given_code or not spec.mentioned:
            return {}
        model = await self.res.model(runtime)
        question = f"Goal: {clip(str(state.get('goal') or self._task(state)), 2500)}\nQuestion: {GIVEN_CODE_QUESTION}"
        verdict = await choose(model, OPTION_SYSTEM, question, GIVEN_CODE_OPTIONS,
                               examples=GIVEN_CODE_EXAMPLES, default="change")  # fmt: skip
        log.debug("coder given code: %s %s", verdict.choice, dict(verdict.scores))
        if verdict.choice != "fix":
            return {}
        return await self._values(state, runtime, spec.given_code, spec.mentioned)

    async def _values(
        self, state: CoderState, runtime: Runtime[RunContext], code: str, calls: list[str]
    ) -> dict[str, str]:
        """What ``code`` returns for each call (``repr``; ``raises X``), run in the sandbox in
        a throw-away directory; calls it could not run are left out."""
        ctx = self.res.tools(runtime)
        root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="coder-values-"))
        script = (
            "import json, sys\nns = {'__name__': 'coder_values'}\n"
            "exec(compile(open('given.py').read(), 'given.py', 'exec'), ns)\nout = {}\n"
            f"for call in {calls!r}:\n"
            "    try:\n        out[call] = repr(eval(call, ns))\n"
            "    except BaseException as err:\n        out[call] = 'raises ' + type(err).__name__\n"
            f"print({code_checks.PROBE_MARK!r} + json.dumps(out))\n"
        )
        try:
            await asyncio.to_thread(_write_files, root, {"given.py": code})
            result = await run_sandboxed(script, root, ctx.sandbox)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)
        for line in reversed(result.stdout.splitlines()):
            if line.startswith(code_checks.PROBE_MARK):
                try:
                    found = json.loads(line[len(code_checks.PROBE_MARK):])
                except ValueError:
                    return {}
                return {str(k): str(v)[:code_checks.VALUE_CHARS] for k, v in found.items()}
        return {}

    async def _still_buggy(self, state: CoderState, runtime: Runtime[RunContext], module: str) -> str:
        """Why ``module`` still has the reported bug (every reported call returns what the
        given code returns), or ``""``."""
        reported = state.get("reported") or {}
        now = await self._values(state, runtime, module, list(reported))
        if not now or any(not _same_value(now.get(call), value) for call, value in reported.items()):
            return ""
        shown = "; ".join(f"{call} still returns {value}" for call, value in reported.items())
        return f"it still has the reported bug ({shown}, as the given code does)"

    def _from_kept(self, state: CoderState, filename: str, module: str, tests: str) -> dict[str, Any] | None:
        """The state of a retry that starts from an earlier attempt's files (None when the
        kept module is not usable as it is: the retry then writes it again, shown why)."""
        split = code_text.split_module(module)
        if self._module_problem(state, split, None) or not code_text.count_tests(tests):
            return None
        notes = [*state.get("notes", []), "started from the files the attempt before left "
                 f"({filename}, test_{filename}) and their failing tests"]  # fmt: skip
        return {
            "kept": True, "module_file": filename, "module_code": split.module,
            "names": split.names, "test_file": f"test_{filename}", "test_code": tests,
            "problem": "", "notes": notes, "module_tries": 1,
        }  # fmt: skip

    async def write_tests(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model writes tests for the module; code adds the import, puts the stated
        examples first and drops stray calls and checks that cannot fail."""
        filename = state["module_file"]
        user = (
            f"{self._task(state)}\n\nModule {filename}:\n{_fence(state['module_code'])}\n\n"
            f"Write {state['test_file']}."
        )
        retest = state.get("fix") == "retest"
        again = bool(state.get("test_tries"))
        if retest or again:
            # The first tests were doubtful or unusable: a fresh sample, not the same reply.
            user += "\n\nUse short inputs whose results you can work out with certainty."
        temperature = ALT_TEMPERATURE if retest or again else None
        reply, n_in, n_out = await self._generate(
            runtime, TESTS_SYSTEM, user, TESTS_TOKENS, temperature
        )
        stated = code_spec.stated_tests(self._spec(state), state["names"])
        text, error = code_text.test_file(
            code_text.code_of(reply), filename, state["names"], stated, state.get("reported"),
            self._siblings(state),
        )
        update: dict[str, Any] = {
            "usage": add_usage(dict(state), n_in, n_out), "steps": state.get("steps", 0) + 1,
            "test_tries": state.get("test_tries", 0) + 1,
        }  # fmt: skip
        if retest:
            update.update(retests=state.get("retests", 0) + 1, fix="", disputed=[],
                          repairs=state.get("repairs", 0) + 1, best=None)  # fmt: skip
            if error is not None:  # keep the doubtful tests: they can fail, unlike none
                update["test_code"] = state["test_code"]
                return update
        # Without usable tests of its own the file holds the stated examples only, or
        # nothing: a check that cannot fail (``callable(f)``) is never written instead.
        update["test_code"] = text if error is None or stated else ""
        return update

    async def run_tests(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Write both files to the workspace and run pytest on them in the sandbox. A pair
        that fails more tests than the best one seen is undone: the best pair is written
        back and run again, so the files and the verdict always belong together."""
        ctx = self.res.tools(runtime)
        module = (state["module_file"], state["module_code"])
        tests = (state["test_file"], state["test_code"])
        run = await self._run(ctx, module, tests)
        failed = failed_count(run, state["test_code"])
        artifacts = list(state.get("artifacts") or [])
        artifacts += [p for p in (module[0], tests[0]) if p not in artifacts]
        update: dict[str, Any] = {"artifacts": artifacts}
        best = state.get("best")
        if best is not None and failed > best["failed"]:
            notes = [*state.get("notes", []), f"a repair that failed {failed} tests was undone"]
            run = await self._run(
                ctx, (module[0], best["module_code"]), (tests[0], best["test_code"])
            )
            failed = failed_count(run, best["test_code"])
            update.update(module_code=best["module_code"], test_code=best["test_code"], notes=notes)
            update["disputed"] = best.get("disputed", [])
        current = {
            "module_code": update.get("module_code", state["module_code"]),
            "test_code": update.get("test_code", state["test_code"]), "failed": failed,
            "disputed": update.get("disputed", state.get("disputed", [])),
        }  # fmt: skip
        if best is None or failed <= best["failed"]:
            update["best"] = current
        log.debug("coder run: %s\n%s\n%s", run.summary, update.get("module_code", module[1]),
                  update.get("test_code", tests[1]))  # fmt: skip
        update.update(run_output=clip(run.output, 6000), summary=run.summary, passed=run.passed)
        update["failed"] = failed
        return update

    async def diagnose(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Decide what the next repair changes, from evidence (see the module docstring)."""
        update: dict[str, Any] = {"diagnoses": state.get("diagnoses", 0) + 1}
        alt = state.get("alt_code", "")
        repairs = state.get("repairs", 0)
        if not alt:
            usage = dict(state)
            for temperature in ALT_TEMPERATURES:
                reply, n_in, n_out = await self._generate(
                    runtime, MODULE_SYSTEM, self._module_prompt(state), MODULE_TOKENS, temperature
                )
                usage["usage"] = add_usage(usage, n_in, n_out)
                repairs += 1
                split = code_text.split_module(code_text.code_of(reply))
                cut = code_text.cut_inside(reply, n_out >= MODULE_TOKENS)
                usable = not self._module_problem(state, split, cut) and set(
                    state["names"]) <= set(split.names)  # fmt: skip
                alt = split.module if usable else UNUSABLE
                if alt != UNUSABLE and not code_checks.same_code(alt, state["module_code"]):
                    break
                alt = UNUSABLE  # the same code again agrees with itself: no evidence
            update.update(
                usage=usage["usage"], steps=state.get("steps", 0) + repairs - state.get("repairs", 0),
                repairs=repairs, alt_code=alt,
            )  # fmt: skip
        ctx = self.res.tools(runtime)
        failing_names = code_checks.failed_tests(state.get("run_output", ""))
        failing = [c for c in code_checks.checks_of(state["test_code"]) if c.test in failing_names]
        mine, _ = await self._probe(ctx, state, state["module_code"], failing)
        theirs: dict[str, tuple[str, bool]] | None = None
        if alt != UNUSABLE:
            theirs, alt_run = await self._probe(ctx, state, alt, failing, run=True)
            if alt_run is not None and failed_count(alt_run, state["test_code"]) < state["failed"]:
                # The second implementation passes more of the tests: it becomes the module
                # (the first one the alternative) and runs again in the workspace.
                notes = [*state.get("notes", []), "a second implementation passed more tests"]
                update.update(module_code=alt, alt_code=state["module_code"], fix="", notes=notes)
                return update
        found = code_checks.verdicts(failing, mine or {}, theirs)
        fix = choose_fix(found, state)
        update.update(fix=fix, evidence=[v.line() for v in found])
        log.debug("coder diagnose: %s from %s", fix, update["evidence"])
        if fix == "tests":
            reasons = {
                v.check.test: f"disputed: {v.check.call} returns {v.value} in two "
                "independently sampled implementations"
                for v in found
            }  # fmt: skip
            update["test_code"] = code_checks.disputed_marked(state["test_code"], reasons)
            update["disputed"] = [*state.get("disputed", []), *(v.line() for v in found)]
            update["fix"] = ""
        return update

    async def _probe(
        self,
        ctx: ToolContext,
        state: CoderState,
        module_code: str,
        checks: list[code_checks.Check],
        run: bool = False,
    ) -> tuple[dict[str, tuple[str, bool]] | None, PytestRun | None]:
        """Probe ``module_code`` on ``checks`` in a throw-away directory (never the workspace:
        a second implementation is evidence, not a deliverable) and, with ``run``, also run
        the whole test file on it: (what each check returned, the pytest run)."""
        # File work off the event loop (the LangGraph server refuses blocking calls in it).
        root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="coder-probe-"))
        try:
            await asyncio.to_thread(_write_files, root, {
                state["module_file"]: module_code, state["test_file"]: state["test_code"]})
            probe: dict[str, tuple[str, bool]] | None = None
            if checks:
                script = code_checks.probe_script(state["test_file"], checks)
                result = await run_sandboxed(script, root, ctx.sandbox)
                probe = code_checks.probe_results(result.stdout)
            pytest_run = await run_pytest(ctx, root, [state["test_file"]]) if run else None
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)
        return probe, pytest_run

    async def repair(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Fix the module, shown the failing checks and what they returned."""
        repairs = state.get("repairs", 0) + 1
        output = state.get("run_output", "")
        evidence = state.get("evidence") or code_text.failed_checks(output)
        failure = "\n".join(f"- {c}" for c in evidence) or code_text.failure_excerpt(output, 800)
        user = (
            f"{self._task(state)}\n\nModule {state['module_file']}:\n"
            f"{_fence(state['module_code'])}\n\nThese checks of it fail:\n{failure}\n\n"
            f"Write the corrected {state['module_file']}."
        )
        if any(code_checks.STATED_NOTE in c for c in evidence):
            user += " The checks the task itself states are right: the module must meet them."
        reply, n_in, n_out = await self._generate(runtime, FIX_MODULE_SYSTEM, user, MODULE_TOKENS)
        update: dict[str, Any] = {
            "usage": add_usage(dict(state), n_in, n_out), "repairs": repairs,
            "steps": state.get("steps", 0) + 1,
        }  # fmt: skip
        code = code_text.code_of(reply)
        log.debug("coder repair (module) reply:\n%s", code)
        split = code_text.split_module(code)
        problem = self._module_problem(state, split, code_text.cut_inside(reply, n_out >= MODULE_TOKENS))
        if not problem and set(state["names"]) <= set(split.names):
            update["module_code"] = split.module
        else:  # the module stays as it was; the next run says so
            update["notes"] = [*state.get("notes", []), f"a repair was rejected: {problem or 'a name went missing'}"]
        return update

    async def finish(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The result: the files and the test run, as the task's output, with how strong
        its evidence is."""
        if not state.get("module_file"):
            lines = []
            if state.get("module_code"):  # the rejected module still reaches the reader
                lines = ["The last module written (rejected, not saved):", _fence(state["module_code"])]
            return {"output": "\n".join(lines),
                    "error": f"no usable module: {state.get('problem') or 'no code'}"}
        if not state.get("test_code"):
            return {
                "output": f"Wrote nothing: no test that can fail was written for "
                f"{state['module_file']}.\n\n{state['module_file']} (not saved):\n"
                + _fence(state["module_code"]),
                "error": f"no evidence: the model wrote no usable test for {state['module_file']} "
                "and the task states no example to test",
                "verification": {"passed": False, "feedback": "evidence: none"},
            }
        passed = bool(state.get("passed"))
        disputed = state.get("disputed") or []
        evidence = evidence_of(state["test_code"])
        verdict = "passed" if passed else "FAILED"
        if passed and disputed:
            # pytest passed, but only with checks set aside: say so where a reader looks first.
            verdict = (f"passed with {len(disputed)} disputed check{'s' if len(disputed) > 1 else ''} "
                       "set aside (xfail, listed below: check them)")
        lines = [
            f"Wrote {state['module_file']} and {state['test_file']}; "
            f"the tests {verdict} in the sandbox ({state.get('summary') or 'no summary'}).",
            f"Evidence: {evidence}.",
            "", f"{state['module_file']}:", _fence(state["module_code"]),
            "", f"{state['test_file']}:", _fence(state["test_code"]),
        ]  # fmt: skip
        if disputed:
            # Set-aside checks are a decision the reader should be able to check.
            lines += ["", "Tests set aside (kept in the file, marked xfail): their expected "
                      "value differs from what two independently sampled implementations "
                      "return, so the test is more likely wrong than the module:"]  # fmt: skip
            lines += [f"- {d}" for d in disputed]
        lines += [f"Note: {n}." for n in state.get("notes") or []]
        lines += [
            "",
            "Test run (pytest -q):",
            "```text",
            clip(state.get("run_output", ""), 1500),
            "```",
        ]
        feedback = f"pytest: {state.get('summary', '')}; evidence: {evidence}"
        if disputed:
            feedback += f"; {len(disputed)} disputed check(s) set aside"
        return {
            "output": "\n".join(lines),
            "citations": [],
            # Tests that never passed make a failed task (the files and output stay in its
            # record): the supervisor escalates it, and a failure is never cached as done.
            "error": None if passed else _test_failure(state),
            "verification": {"passed": passed, "feedback": feedback},
        }

    # a project's integration stage --------------------------------------------------------

    def _project(self, state: CoderState) -> tuple[list[code_spec.ModuleBrief], str] | None:
        return project.design_of(str((state.get("task") or {}).get("instruction") or ""))

    async def integrate(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Write the design files, check each module against its interface and run every
        module's tests together in the sandbox (graph docs: agents/flows/project.py)."""
        try:
            found = self._project(state)
        except project.ProjectDesignError as err:
            return {"error": str(err), "output": ""}
        assert found is not None
        modules, goal = found
        ctx = self.res.tools(runtime)
        root = await asyncio.to_thread(ctx.ensure_workspace)
        files = {"design.json": project.design_json(modules) + "\n",
                 "DESIGN.md": project.design_markdown(modules, goal)}  # fmt: skip
        await asyncio.to_thread(_write_files, root, files)
        problems: dict[str, str] = {}
        tests: list[str] = []
        for brief in modules:
            code = await asyncio.to_thread(_read_kept, root, brief.file)
            if not code:
                problems[brief.file] = "not written"
                continue
            found_problems = code_spec.brief_problems(code, brief, goal)
            if found_problems:
                problems[brief.file] = "; ".join(found_problems)
            if await asyncio.to_thread(_read_kept, root, project.test_file_of(brief.file)):
                tests.append(project.test_file_of(brief.file))
        run = await run_pytest(ctx, root, tests) if tests else PytestRun(False, "no tests", "")
        failing = [m.file for m in modules if m.file in problems]
        failing += [f for f in project.failing_modules(run.output, modules) if f not in failing]
        if not run.passed and tests and not failing:
            failing = [m.file for m in modules]  # a failure pytest did not attribute
        artifacts = list(state.get("artifacts") or [])
        artifacts += [f for f in files if f not in artifacts]
        return {
            "artifacts": artifacts, "project_failing": failing, "project_problems": problems,
            "run_output": clip(run.output, 6000), "summary": run.summary,
            "passed": run.passed and not problems,
        }  # fmt: skip

    async def repair_project_module(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Send the first failing module not yet sent back to the module flow: it starts
        from the files in the workspace and sees why the integration run failed."""
        found = self._project(state)
        assert found is not None
        modules, goal = found
        repaired = list(state.get("project_repaired") or [])
        file = next(f for f in state.get("project_failing") or [] if f not in repaired)
        brief = next(m for m in modules if m.file == file)
        problem = (state.get("project_problems") or {}).get(file)
        why = f"its interface check found: {problem}" if problem else "its tests failed"
        feedback = (
            f"The project's modules were run together and {file} failed: {why}.\n"
            f"pytest: {state.get('summary') or ''}\n{clip(state.get('run_output') or '', 2500)}"
        )
        task = dict(state.get("task") or {})
        payload = {
            "task": {**task, "id": f"{task.get('id', 'task')}:{file}",
                     "instruction": code_spec.module_instruction(brief, goal), "depends_on": []},
            "goal": goal, "feedback": feedback,
        }  # fmt: skip
        assert self.graph is not None
        result = await self.graph.ainvoke(payload, context=runtime.context)
        used = result.get("usage") or {}
        usage = add_usage(dict(state), int(used.get("tokens_in", 0)), int(used.get("tokens_out", 0)),
                          int(used.get("model_calls", 0)))  # fmt: skip
        notes = [*state.get("notes", []), f"{file} was sent back to the module flow ({why}): "
                 + ("its tests passed" if not result.get("error") else f"still failing: {result['error']}")]
        artifacts = list(state.get("artifacts") or [])
        artifacts += [a for a in result.get("artifacts") or [] if a not in artifacts]
        return {"project_repaired": [*repaired, file], "usage": usage, "notes": notes,
                "artifacts": artifacts, "steps": state.get("steps", 0) + int(result.get("steps") or 0)}  # fmt: skip

    async def finish_project(self, state: CoderState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """README.md from the artifacts, and the result: the files, each module's state and
        the integration run."""
        if state.get("error"):
            return {}
        found = self._project(state)
        assert found is not None
        modules, goal = found
        ctx = self.res.tools(runtime)
        root = await asyncio.to_thread(ctx.ensure_workspace)
        present = [name for m in modules for name in (m.file, project.test_file_of(m.file))
                   if await asyncio.to_thread(_read_kept, root, name)]  # fmt: skip
        failing = list(state.get("project_failing") or [])
        problems = state.get("project_problems") or {}
        passed = bool(state.get("passed")) and not failing
        outcome = (f"All module tests passed together ({state.get('summary')})." if passed else
                   f"FAILED ({state.get('summary') or 'no tests'}); failing: {', '.join(failing)}.")
        await asyncio.to_thread(
            _write_files, root, {"README.md": project.readme(modules, goal, outcome, present)}
        )
        artifacts = list(state.get("artifacts") or [])
        artifacts += [f for f in ("README.md", *present) if f not in artifacts]
        lines = [f"Integrated the project of {len(modules)} modules: {outcome}",
                 "Wrote design.json, DESIGN.md and README.md.", ""]  # fmt: skip
        for brief in modules:
            state_of = ("missing" if brief.file not in present else
                        f"interface: {problems[brief.file]}" if brief.file in problems else
                        "tests failing" if brief.file in failing else "ok")
            lines.append(f"- {brief.file}: {state_of}")
        lines += [f"Note: {n}." for n in state.get("notes") or []]
        lines += ["", "Test run (pytest -q, every module's tests):", "```text",
                  clip(state.get("run_output", ""), 1500), "```"]  # fmt: skip
        return {
            "output": "\n".join(lines), "artifacts": artifacts,
            "error": None if passed else f"project integration failed: {', '.join(failing) or 'no tests'}",
            "verification": {"passed": passed, "feedback": f"pytest (all modules): {state.get('summary', '')}"},
        }  # fmt: skip

    def start(self, state: CoderState) -> Literal["integrate", "write_module"]:
        try:
            return "integrate" if self._project(state) is not None else "write_module"
        except project.ProjectDesignError:
            return "integrate"  # it reports the design error as the task's

    def after_integrate(self, state: CoderState) -> Literal["repair_project_module", "finish_project"]:
        repaired = state.get("project_repaired") or []
        left = [f for f in state.get("project_failing") or [] if f not in repaired]
        if state.get("error") or not left or len(repaired) >= MAX_PROJECT_REPAIRS:
            return "finish_project"
        return "repair_project_module"

    # routing ------------------------------------------------------------------------------

    def after_module(
        self, state: CoderState
    ) -> Literal["write_module", "write_tests", "run_tests", "finish"]:
        if not state.get("module_file"):
            return "write_module" if state.get("module_tries", 0) < MAX_MODULE_TRIES else "finish"
        return "run_tests" if state.get("test_code") else "write_tests"

    def after_tests(self, state: CoderState) -> Literal["write_tests", "run_tests", "finish"]:
        if state.get("test_code"):
            return "run_tests"
        return "write_tests" if state.get("test_tries", 0) < MAX_TEST_TRIES else "finish"

    def after_run(self, state: CoderState) -> Literal["diagnose", "finish"]:
        # Diagnosing costs no model call once the second implementation exists, and its
        # free outcomes (swap the modules, set disputed checks aside) need no budget.
        if state.get("passed") or state.get("diagnoses", 0) >= MAX_DIAGNOSES:
            return "finish"
        if state.get("repairs", 0) >= MAX_REPAIRS and not state.get("alt_code"):
            return "finish"
        return "diagnose"

    def after_diagnose(
        self, state: CoderState
    ) -> Literal["write_tests", "repair", "run_tests", "finish"]:
        fix = state.get("fix")
        if fix in ("module", "retest") and state.get("repairs", 0) >= MAX_REPAIRS:
            return "finish"
        return "repair" if fix == "module" else "write_tests" if fix == "retest" else "run_tests"


def build_coder(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled coder flow (no checkpointer: it inherits the parent's)."""
    steps = CoderSteps(resources)
    builder = StateGraph(
        CoderState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("write_module", steps.write_module)
    builder.add_node("write_tests", steps.write_tests)
    builder.add_node("run_tests", steps.run_tests)
    builder.add_node("diagnose", steps.diagnose)
    builder.add_node("repair", steps.repair)
    builder.add_node("finish", steps.finish)
    builder.add_node("integrate", steps.integrate)
    builder.add_node("repair_project_module", steps.repair_project_module)
    builder.add_node("finish_project", steps.finish_project)
    builder.add_conditional_edges(START, steps.start)
    builder.add_conditional_edges("integrate", steps.after_integrate)
    builder.add_edge("repair_project_module", "integrate")
    builder.add_edge("finish_project", "__end__")
    builder.add_conditional_edges("write_module", steps.after_module)
    builder.add_conditional_edges("write_tests", steps.after_tests)
    builder.add_conditional_edges("run_tests", steps.after_run)
    builder.add_conditional_edges("diagnose", steps.after_diagnose)
    builder.add_edge("repair", "run_tests")
    builder.add_edge("finish", "__end__")
    steps.graph = builder.compile(name=name)
    return steps.graph
