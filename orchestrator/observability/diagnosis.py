"""Why a run failed, by code: every failed or escalated task, and every stopped or failed
run, gets a failure mode from a fixed taxonomy, the evidence it was read from and a
one-line suggestion. No model judges anything here: the rules below read the recorded
state (task records and their history, ``stop_reason``, plan versions), so the same run
always gets the same diagnosis, in the report, the stats and the dashboard alike.

The taxonomy follows the three categories of MAST (Cemri et al., "Why Do Multi-Agent LLM
Systems Fail?", 2025) where a mode is one of theirs — specification and system design,
inter-agent misalignment, task verification and termination — and adds this product's
own (``product``): approvals, budgets, time-outs, the sandbox, tool and model errors.
docs/observability.md lists every mode with what triggers it.

Rules, in order (the first that matches names the mode): a task's *final* error for a task
that stayed failed; the error of its *first* failure for a task that escalation recovered
(the reason it needed help), except that a task done after a reassignment was planned for
the wrong agent. A run's mode is its ``stop_reason``'s when that names a budget, a cap, a
human's abort or an early finish; else ``plan_invalid`` when it ran the planner's fallback
plan; otherwise its first failing task's, in plan order. A done task whose code lacks a
name the task asked for is ``spec_not_followed``, and one whose own tests the coder had to
set aside is ``own_tests_wrong`` (recovered); their runs may still complete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

Category = Literal["specification", "misalignment", "verification", "product"]
"""MAST's three categories (specification and system design; inter-agent misalignment;
task verification and termination), and ``product`` for this product's own modes."""

FailureMode = Literal[
    "approval_rejected", "budget", "time_out", "sandbox_refusal", "tool_error", "model_error",
    "dependency_lost", "repeated_step", "premature_finish", "wrong_agent", "spec_not_followed",
    "own_tests_wrong", "verification_failed", "plan_invalid", "unknown",
]


@dataclass(frozen=True)
class ModeInfo:
    """One failure mode of the taxonomy."""

    mode: FailureMode
    """Its stable name (JSON, stats, OpenTelemetry attribute ``failure.mode``)."""
    category: Category
    """Its MAST category, or ``product``."""
    mast: str
    """The MAST failure mode it corresponds to (e.g. "FM-1.3 step repetition"), or ""."""
    title: str
    """What happened, for people."""
    suggestion: str
    """What to change, one line."""


TAXONOMY: dict[str, ModeInfo] = {m.mode: m for m in (
    ModeInfo("spec_not_followed", "specification", "FM-1.1 disobey task specification",
             "the result does not do what the task asked (a name asked for is missing)",
             "State the exact names in the task's acceptance criteria, or run it on a stronger tier."),
    ModeInfo("wrong_agent", "specification", "FM-1.2 disobey role specification",
             "the task was planned for an agent that could not do it; another agent did",
             "Plan this kind of task for the agent that did it: add a plan-library example, "
             "or set worker_selection = \"checked\"."),
    ModeInfo("repeated_step", "specification", "FM-1.3 step repetition",
             "the retry repeated the same step and failed the same way",
             "Change the instruction (review.failures lets a human edit it) or add a stronger "
             "model tier: running it again as it is will not help."),
    ModeInfo("plan_invalid", "specification", "FM-1.1 disobey task specification",
             "the planner never produced a valid plan; the run fell back to one task",
             "Add a plan-library example for this kind of goal, or use a stronger supervisor model."),
    ModeInfo("dependency_lost", "misalignment", "FM-2.4 information withholding",
             "a task ran without the result of a task it depends on",
             "Check the task's depends_on, and that the dependency's result names what the "
             "dependent reads (a file, a table); shorter results fit the context share."),
    ModeInfo("premature_finish", "verification", "FM-3.1 premature termination",
             "the supervisor finished the run before planned tasks ran",
             "Make the goal's deliverables explicit, or turn adaptive_replanning off for such goals."),
    ModeInfo("verification_failed", "verification", "FM-3.2 no or incomplete verification",
             "the result failed its check (tests, acceptance criteria, a reviewer)",
             "Make the acceptance criteria concrete, or run the task on a stronger tier."),
    ModeInfo("own_tests_wrong", "verification", "FM-3.3 incorrect verification",
             "the model's own tests are wrong (they disagree with the code's behaviour, or do not run)",
             "Give the expected values in the task, or review the disputed checks in the output."),
    ModeInfo("approval_rejected", "product", "",
             "a human rejected the plan or an action, skipped the task or aborted the run",
             "Read the reviewer's reason; change the plan or the action so it can be approved."),
    ModeInfo("budget", "product", "",
             "a token, cost or round budget was spent before the plan was done",
             "Raise the budget named in the evidence, or give the goal a smaller plan."),
    ModeInfo("time_out", "product", "",
             "a wall-clock budget or a time-out ran out",
             "Raise budgets.task_wall_s / run_wall_s, or run the task on a faster model."),
    ModeInfo("sandbox_refusal", "product", "",
             "the sandbox refused to run the code, or refused an operation in it",
             "Enable isolation on this host (user namespaces or bubblewrap), or ask for code "
             "that needs no network, processes or files outside the workspace."),
    ModeInfo("tool_error", "product", "",
             "a tool failed or was unavailable",
             "Check the tool's configuration (MCP server, data files, knowledge base), or give "
             "the agent another tool."),
    ModeInfo("model_error", "product", "",
             "the model failed: an error from its endpoint, or output that was invalid or empty",
             "Use another model tier (Settings.tiers), or a model whose structured output this "
             "agent supports."),
    ModeInfo("unknown", "product", "",
             "a failure none of the rules recognises",
             "Read the task's error and history below."),
)}
"""Every mode, by name. Stable: names are what stats and traces aggregate over."""


class Diagnosis(TypedDict):
    """One diagnosed failure: a task's or the run's."""

    scope: Literal["run", "task"]
    task_id: str
    """The task diagnosed ("" for the run)."""
    agent: str
    """The agent that ran the task last ("" for the run)."""
    mode: FailureMode
    category: Category
    mast: str
    title: str
    evidence: str
    """The recorded text the mode was read from (an error, a history entry, a stop reason)."""
    source: str
    """Where that text is in the state, e.g. ``results.a.history[2]`` or ``stop_reason``."""
    suggestion: str
    recovered: bool
    """A task that failed and then finished after escalation (its run may still complete)."""
    blocks: list[str]
    """Tasks skipped because this one failed (dependents that never ran)."""


class RunDiagnosis(TypedDict):
    """A run's diagnosis: the run's own (stopped or failed runs only) and its tasks'."""

    run: Diagnosis | None
    tasks: list[Diagnosis]


# -- reading a failure text ----------------------------------------------------------------

DISPUTED = re.compile(r"disputed checks?(\(s\))? set aside", re.I)
"""The coder's note that some of its own tests contradict two independent implementations
(agents/flows/coder.py): the tests, not the code, were wrong."""

_RULES: tuple[tuple[FailureMode, re.Pattern[str]], ...] = (
    ("approval_rejected", re.compile(
        r"rejected by a (human|reviewer)|rejected by a human reviewer|aborted by a human"
        r"|skipped by a human|the user rejected", re.I)),
    ("time_out", re.compile(
        r"budget: (task|run)_wall_s|\bTimeoutError\b|APITimeoutError|ReadTimeout|\btimed out\b|\btime-?out\b", re.I)),
    ("budget", re.compile(r"^(budget|limit): |TokenBudgetExceeded|budget: \w+ \(", re.I)),
    ("sandbox_refusal", re.compile(r"sandbox unavailable|sandbox refused|refused by the sandbox|kernel refused", re.I)),
    ("spec_not_followed", re.compile(r"cannot import name '?(\w+)'?", re.I)),
    ("own_tests_wrong", re.compile(
        r"errors? during collection|ERROR collecting|disputed check|in the test file", re.I)),
    ("dependency_lost", re.compile(
        r"no earlier result|nothing to review|no data to analyze|dependency result (is )?missing", re.I)),
    ("tool_error", re.compile(
        r"the tool '?[\w.-]+'? is unavailable|ToolException|McpError|tool \S+ failed|\btool error\b", re.I)),
    ("model_error", re.compile(
        r"no final answer|StructuredOutputError|OutputParserException|returned an empty result"
        r"|gave no answer|produced no usable text|no usable module|invalid (json|output|reply)"
        r"|ModelError|ModelNotInstalledError|APIConnectionError|APIError|APIStatusError|RateLimitError"
        r"|InternalServerError|ConnectionError|connection (reset|refused)|max_tokens", re.I)),
    ("verification_failed", re.compile(
        r"^verification failed|FAILED in the sandbox|a reviewer rejected|acceptance criteria", re.I)),
)


def classify(text: str) -> FailureMode | None:
    """The mode a failure text shows, by the first rule that matches; None if none does."""
    for mode, pattern in _RULES:
        if pattern.search(text):
            return mode
    return None


_ASKED_NAME = re.compile(
    r"\b(?:function|class|method)\s+(?:(?:named|called)\s+`?([A-Za-z_]\w*)`?|`([A-Za-z_]\w*)`|([A-Za-z_]\w*)\()"
    r"|`([A-Za-z_]\w*)\([^`]*\)`"
)
"""How a task asks for a name: "a function named f", "class called Foo", "function `f`",
"function f(x)", "`f(x)`" (never a bare word: "a method that…" asks for nothing)."""


def asked_names(instruction: str) -> list[str]:
    """Identifiers a task asks for by name, in order, once each."""
    names: list[str] = []
    for m in _ASKED_NAME.finditer(instruction):
        name = next(g for g in m.groups() if g)
        if name not in names:
            names.append(name)
    return names


def missing_names(record: Mapping[str, Any]) -> list[str]:
    """Names the task asked for that the code it wrote does not define (only for a result
    with Python code in it: a prose answer need not define anything)."""
    output = str(record.get("output") or "")
    if "def " not in output and "class " not in output:
        return []
    instruction = str((record.get("task") or {}).get("instruction") or "")
    defined = set(re.findall(r"^\s*(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", output, re.M))
    return [n for n in asked_names(instruction) if n not in defined]


# -- one task ------------------------------------------------------------------------------


def _make(scope: Literal["run", "task"], mode: FailureMode, evidence: str, source: str,
          task_id: str = "", agent: str = "", recovered: bool = False,
          blocks: Sequence[str] = (), suggestion: str | None = None) -> Diagnosis:
    info = TAXONOMY[mode]
    return Diagnosis(scope=scope, task_id=task_id, agent=agent, mode=mode, category=info.category,
                     mast=info.mast, title=info.title, evidence=_clip(evidence), source=source,
                     suggestion=suggestion or info.suggestion, recovered=recovered, blocks=list(blocks))


def _clip(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failures(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each recorded failure of a task as (text, where), oldest first: escalation's
    ``failed:`` entry per failed attempt, then the current error when escalation has not
    recorded it yet (a run stopped before it could)."""
    task_id = str((record.get("task") or {}).get("id") or "?")
    found = [(entry.removeprefix("failed: "), f"results.{task_id}.history[{i}]")
             for i, entry in enumerate(_history(record)) if entry.startswith("failed: ")]
    attempts = int(record.get("attempts") or 0)
    if record.get("status") == "failed" and record.get("error") and (not found or attempts > len(found)):
        found.append((str(record["error"]), f"results.{task_id}.error"))
    return found


def _history(record: Mapping[str, Any]) -> list[str]:
    return [str(h) for h in record.get("history") or []]


def diagnose_task(task_id: str, record: Mapping[str, Any], values: Mapping[str, Any]) -> Diagnosis | None:
    """The failure mode of one task: None for a task that did not fail (done without
    escalation, or never started), or was skipped because a dependency failed or the
    supervisor finished (the run's diagnosis names those)."""
    status = record.get("status")
    history = _history(record)
    agent = str((record.get("task") or {}).get("agent") or "")
    failures = _failures(record)
    escalated = any(h.startswith("escalation: ") for h in history)
    if status == "skipped":
        for i, h in enumerate(history):
            if h == "escalation: skipped by a human":
                return _make("task", "approval_rejected", h, f"results.{task_id}.history[{i}]", task_id, agent)
        return None
    if status == "done" and not (escalated or failures):
        missing = missing_names(record)
        if missing:  # done, but not what was asked: the check that should have caught it did not
            return _make("task", "spec_not_followed", _missing_text(missing), f"results.{task_id}.output",
                         task_id, agent)
        for i, h in enumerate(history):
            if DISPUTED.search(h):  # the coder caught its own wrong tests and set them aside
                return _make("task", "own_tests_wrong", h, f"results.{task_id}.history[{i}]", task_id, agent,
                             recovered=True)
        return None
    if status not in ("done", "failed"):
        return None
    recovered = status == "done"
    if recovered:
        for i, h in enumerate(history):
            if h.startswith("escalation: reassigned to "):
                return _make("task", "wrong_agent", f"{h}; it was planned for {_planned_agent(task_id, values)}",
                             f"results.{task_id}.history[{i}]", task_id, agent, recovered=True)
    text, where = (failures[0] if recovered else failures[-1]) if failures else ("", f"results.{task_id}")
    missing = missing_names(record)
    if missing and not recovered:
        return _make("task", "spec_not_followed", _missing_text(missing), f"results.{task_id}.output",
                     task_id, agent, blocks=_blocked_by(task_id, values))
    mode = classify(text)
    if not recovered and mode != "sandbox_refusal":
        # A host that refused to isolate code refuses every retry too: that is the cause,
        # whatever the later attempts failed of.
        for t, w in failures:
            if classify(t) == "sandbox_refusal":
                mode, text, where = "sandbox_refusal", t, w
                break
    if mode == "dependency_lost" and not _has_done_dependency(record, values):
        mode = None  # no dependency had a result to lose: it is the task's own failure
    if mode is None and not recovered:
        # A result that failed its check (the history's "verification failed: …").
        for i, h in enumerate(history):
            if h.startswith("verification failed"):
                mode, text, where = "verification_failed", h, f"results.{task_id}.history[{i}]"
    if mode is None:
        texts = [t for t, _ in failures]
        if len(texts) >= 2 and len(set(texts)) < len(texts):
            repeated = next(t for t in texts if texts.count(t) > 1)
            return _make("task", "repeated_step",
                         f"the same failure {texts.count(repeated)} times: {repeated}", where, task_id, agent,
                         recovered=recovered, blocks=[] if recovered else _blocked_by(task_id, values))
    return _make("task", mode or "unknown", text or str(record.get("error") or "no error recorded"), where,
                 task_id, agent, recovered=recovered, blocks=[] if recovered else _blocked_by(task_id, values))


def _planned_agent(task_id: str, values: Mapping[str, Any]) -> str:
    """The agent the plan named for the task (the record names the one that ran it)."""
    for t in values.get("tasks") or []:
        if str(t.get("id")) == task_id:
            return str(t.get("agent") or "another agent")
    return "another agent"


def _missing_text(missing: Sequence[str]) -> str:
    return f"asked for {', '.join(missing)}; the code defines {'it' if len(missing) == 1 else 'them'} nowhere"


def _has_done_dependency(record: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    results: Mapping[str, Any] = values.get("results") or {}
    deps = (record.get("task") or {}).get("depends_on") or []
    return any((results.get(d) or {}).get("status") == "done" for d in deps)


def _blocked_by(task_id: str, values: Mapping[str, Any]) -> list[str]:
    """Tasks skipped because ``task_id`` failed, directly or through another skipped task."""
    results: Mapping[str, Any] = values.get("results") or {}
    tasks = values.get("tasks") or []
    blocked: list[str] = []
    frontier = {task_id}
    changed = True
    while changed:
        changed = False
        for t in tasks:
            tid = str(t.get("id"))
            if tid in blocked or (results.get(tid) or {}).get("status") != "skipped":
                continue
            if frontier & set(t.get("depends_on") or []):
                blocked.append(tid)
                frontier.add(tid)
                changed = True
    return blocked


# -- the run -------------------------------------------------------------------------------


def _stop_mode(reason: str) -> FailureMode | None:
    if reason.startswith("supervisor finished early"):
        return "premature_finish"
    if reason.startswith("aborted by a human"):
        return "approval_rejected"
    if reason.startswith(("budget:", "limit:")):
        return "time_out" if "_wall_s" in reason else "budget"
    return None


def diagnose(values: Mapping[str, Any], status: str | None = None) -> RunDiagnosis:
    """Every failed or escalated task's diagnosis, in plan order, and the run's own when
    it ended ``stopped`` or ``failed`` (``status``: the run's status as reports compute it;
    read from the values when not given). A run that completed without escalations has none."""
    from graph.synthesis import final_status

    results: Mapping[str, Any] = values.get("results") or {}
    order = [str(t.get("id")) for t in values.get("tasks") or []]
    order += [tid for tid in results if tid not in order]  # tasks of earlier plan versions
    tasks = [d for tid in order if (d := diagnose_task(tid, results.get(tid) or {}, values)) is not None]
    if status is None:
        status = final_status(values)[0] if values.get("status") in ("completed", "stopped", "failed") else ""
    if status not in ("stopped", "failed"):
        return RunDiagnosis(run=None, tasks=tasks)
    reason = str(values.get("stop_reason") or "")
    run: Diagnosis | None = None
    mode = _stop_mode(reason)
    if mode is not None:
        never = [tid for tid in order if (results.get(tid) or {}).get("status") in (None, "pending", "skipped")]
        run = _make("run", mode, reason, "stop_reason", blocks=never)
    elif (fallback := _fallback_plan(values)) is not None:
        run = _make("run", "plan_invalid", *fallback)
    elif (first := next((d for d in tasks if not d["recovered"]), None)) is not None:
        run = _make("run", first["mode"], f"task {first['task_id']} ({first['agent']}): {first['evidence']}",
                    first["source"], first["task_id"], first["agent"], blocks=first["blocks"])
    else:
        run = _make("run", "unknown", reason or f"the run ended {status}", "stop_reason" if reason else "status")
    return RunDiagnosis(run=run, tasks=tasks)


def _fallback_plan(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, where) of the current plan when it is the planner's fallback: no valid plan
    was made, so what failed after it started from a plan nobody designed."""
    versions = values.get("plan_versions") or []
    if versions and versions[-1].get("planned_by") == "fallback":
        return str(versions[-1].get("reason") or "fell back to a one-task plan"), f"plan_versions[{len(versions) - 1}].reason"
    return None
