"""Software tasks: run the example's hidden tests against the code the run produced.

The code is looked for, in order, in the workspace file the goal asked for, any other
Python file the run wrote, and fenced Python blocks in the answer and the task outputs;
only candidates that define the expected function count. Each candidate runs in the
Python sandbox (:func:`tools.sandbox.run_sandboxed`: no network, no files outside a
throw-away workspace, time and memory limits) in its harness mode, which runs each
hidden check in its own process and reports over a channel the code cannot write, so
the score is the share of checks that pass. The best
candidate's score is kept.

A multi-file goal names further ``modules`` the checks import (``from inventory import
Stock``): the run's files of those names are placed in the sandbox workspace next to the
main module (itself written there under its file name), so the checks exercise the
modules together, as a user would import them. A module the run did not write is named
in the comment and every check importing it fails.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from evals.evaluators.base import Score, not_applicable, score, section
from tools.sandbox import SandboxLimits, SandboxResult, run_sandboxed

MAX_CANDIDATES = 3
CHECK_TIMEOUT_S = 3
SANDBOX_SLOTS = 2
"""Sandboxed runs at once (each holds a share of the CPU and of the memory limits)."""
_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


class CodeSpec(BaseModel):
    """An example's ``code`` reference: the function to write and its hidden checks."""

    entrypoint: str
    """Name of the function the goal asks for."""
    filename: str | None = None
    """Workspace file the goal asks the code to be saved in."""
    tests: list[str] = Field(min_length=1)
    """Independent snippets (usually ``assert`` statements) run against the code."""
    check_timeout_s: int = Field(default=CHECK_TIMEOUT_S, ge=1, le=60)
    """Seconds one check (and loading the code) may take."""
    solution: str | None = None
    """A reference solution that passes every check (keeps the checks honest; never shown)."""
    modules: list[str] = Field(default_factory=list)
    """Other workspace files (``.py``) the goal asks for and the checks import."""
    solution_files: dict[str, str] = Field(default_factory=dict)
    """Reference code of ``modules`` by file name (with ``solution``, passes every check)."""


def defines(source: str, name: str) -> bool:
    """Whether ``source`` defines a function (or class) called ``name`` at any level."""
    return (
        re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b", source, re.MULTILINE)
        is not None
    )


def candidates(outputs: Mapping[str, Any], spec: CodeSpec) -> list[tuple[str, str]]:
    """``(where, source)`` pairs that define the entrypoint, most trusted first."""
    files: Mapping[str, str] = (outputs or {}).get("files") or {}
    found: list[tuple[str, str]] = []
    if spec.filename:
        for path, text in files.items():
            if Path(path).name == Path(spec.filename).name:
                found.append((f"file {path}", text))
    found += [
        (f"file {p}", t)
        for p, t in files.items()
        if p.endswith(".py") and (f"file {p}", t) not in found
    ]
    texts = [("answer", str((outputs or {}).get("answer") or ""))]
    texts += [
        (f"task {t.get('task_id')} output", str(t.get("output") or ""))
        for t in (outputs or {}).get("task_outputs") or []
        if isinstance(t, Mapping)
    ]
    for where, text in texts:
        blocks = _FENCE.findall(text)
        for i, block in enumerate(reversed(blocks)):  # later blocks are usually the final version
            found.append((f"{where} block {len(blocks) - i}", block))
    unique: list[tuple[str, str]] = []
    seen: set[str] = set()
    for where, source in found:
        if defines(source, spec.entrypoint) and source.strip() not in seen:
            seen.add(source.strip())
            unique.append((where, source))
    return unique[:MAX_CANDIDATES]


def module_files(outputs: Mapping[str, Any], spec: CodeSpec) -> tuple[dict[str, str], list[str]]:
    """The run's files for the spec's ``modules`` (by file name) and the names it lacks."""
    files: Mapping[str, str] = (outputs or {}).get("files") or {}
    by_name = {Path(p).name: str(t) for p, t in files.items()}
    found = {m: by_name[Path(m).name] for m in spec.modules if Path(m).name in by_name}
    return found, [m for m in spec.modules if m not in found]


PROJECT_DOCS = ("design.json", "DESIGN.md", "README.md")
"""What a multi-module run writes besides its modules: the design and the project's README."""


def project_files(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
    """Evaluator ``project_files``: for a goal asking for several modules, the share of the
    expected files the run left in its workspace — every module the goal names, the design
    (``design.json``, ``DESIGN.md``) and the project's ``README.md``."""
    raw = section(reference_outputs, "code")
    if not raw or not CodeSpec.model_validate(raw).modules:
        return not_applicable("project_files", "the example asks for one module")
    spec = CodeSpec.model_validate(raw)
    wanted = [*spec.modules, *([spec.filename] if spec.filename else []), *PROJECT_DOCS]
    present = {Path(p).name for p in ((outputs or {}).get("files") or {})}
    missing = [name for name in wanted if Path(name).name not in present]
    value = (len(wanted) - len(missing)) / len(wanted)
    return score("project_files", round(value, 4), f"missing: {', '.join(missing)}" if missing else "all present")


_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        for old in [lp for lp in _slots if lp.is_closed()]:
            del _slots[old]
        _slots[loop] = asyncio.Semaphore(SANDBOX_SLOTS)
    return _slots[loop]


async def _sandboxed(
    source: str, spec: CodeSpec, limits: SandboxLimits, files: Mapping[str, str]
) -> SandboxResult:
    """Run the hidden checks against ``source`` in a throw-away sandbox workspace holding
    ``files`` (name -> text); retry once when the sandbox could not start a process
    (another sandbox held the budget)."""
    for attempt in range(2):
        workdir = Path(tempfile.mkdtemp(prefix="eval-code-"))
        try:
            (workdir / "ws").mkdir()
            for name, text in files.items():
                (workdir / "ws" / Path(name).name).write_text(text, encoding="utf-8")
            async with _slot():
                result = await run_sandboxed(
                    source,
                    workdir / "ws",
                    limits,
                    checks=spec.tests,
                    check_timeout_s=CHECK_TIMEOUT_S,
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if (
            attempt == 0
            and "Resource temporarily unavailable" in result.stderr
            and result.checks is None
        ):
            await asyncio.sleep(0.5)
            continue
        return result
    raise AssertionError("unreachable")


async def run_checks(
    source: str,
    spec: CodeSpec,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str] | None = None,
) -> tuple[int, list[str]]:
    """Run the hidden checks against ``source`` in the sandbox: ``(passed, failures)``;
    ``files`` (name -> text) are placed in its workspace for the checks to import.

    The outcomes come from the sandbox's harness over its trusted report channel (each
    check in its own process), never from the code's output: printing a fake report or
    exiting early cannot raise the score.
    """
    limits = limits or SandboxLimits(
        timeout_s=max(10.0, CHECK_TIMEOUT_S * (len(spec.tests) + 1) + 2), cpu_s=30
    )
    result = await _sandboxed(source, spec, limits, files or {})
    report = result.checks
    if report is None or len(report.results) != len(spec.tests):
        why = result.reason or f"exit code {result.exit_code}: {result.stderr.strip()[-300:]}"
        return 0, [f"the harness did not finish ({why})"]
    failures = [
        f"`{spec.tests[i].strip()[:80]}` -> {err.rstrip(': ')}"
        for i, err in enumerate(report.results)
        if err
    ]
    if report.load_error:
        failures.insert(0, f"loading the code raised {report.load_error}")
    passed = sum(1 for err in report.results if err is None)
    return passed, failures


async def code_tests(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
    """Evaluator ``code_tests``: share of the hidden checks the produced code passes."""
    raw = section(reference_outputs, "code")
    if not raw:
        return not_applicable("code_tests", "the example has no hidden tests")
    spec = CodeSpec.model_validate(raw)
    found = candidates(outputs or {}, spec)
    if not found:
        return score("code_tests", 0.0, f"no code defining {spec.entrypoint!r} was produced")
    modules, missing = module_files(outputs or {}, spec)
    best: tuple[float, str] = (-1.0, "")
    for where, source in found:
        files = (
            {**modules, Path(spec.filename).name: source}
            if spec.modules and spec.filename
            else modules
        )
        passed, failures = await run_checks(source, spec, files=files)
        value = passed / len(spec.tests)
        comment = (
            f"{where}: {passed}/{len(spec.tests)} checks pass"
            + (f"; missing module(s) {', '.join(missing)}" if missing else "")
            + (f"; {'; '.join(failures[:3])}" if failures else "")
        )
        if value > best[0]:
            best = (value, comment)
        if value == 1.0:
            break
    return score("code_tests", round(best[0], 4), best[1])
