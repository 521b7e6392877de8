"""Answering a paused run from the command line: one decision per pending interrupt, by id.

``resume THREAD --approve ID`` / ``--reject ID "why"`` / ``--edit ID PLAN.json`` answer one
interrupt each (the flags repeat; an id may be shortened to a unique prefix). A flag without
an id answers the one pending interrupt; with several pending it is a usage error that
lists them. Interrupts left unanswered stay pending: the run goes on and pauses again.
Used by the local CLI and by ``--url`` alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.types import Interrupt

from core.review import (
    QUESTION_FIELD,
    InvalidAnswer,
    ReviewDecision,
    describe,
    kind_of,
    read_tool_answer,
    resume_value,
)
from tools.context import ToolContext
from tools.effects import ledger_approvals

MIN_PREFIX = 4
"""The shortest interrupt-id prefix accepted."""
_ID_LIKE = re.compile(r"[0-9a-f]{8,64}")
"""A lone ``--reject`` value of this shape is an interrupt id (or a prefix), never a reason:
a stale id must be an error, not a rejection of whatever pause is pending now."""


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


@dataclass(frozen=True)
class Requested:
    """One decision given on the command line, for one interrupt id (None: the only one)."""

    interrupt_id: str | None
    decision: ReviewDecision


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Edited plan tasks from a JSON file: a list of tasks or an object with "tasks"."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read the plan {path}: {exc}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(tasks, list):
        raise UsageError(f"{path}: expected a list of tasks or an object with a 'tasks' list")
    return tasks


def from_flags(approve: Sequence[str | None] | None, reject: Sequence[Sequence[str]] | None,
               edit: Sequence[Sequence[str]] | None) -> list[Requested]:
    """The decisions the ``--approve`` / ``--reject`` / ``--edit`` flags ask for."""
    out = [Requested(i, ReviewDecision("approve")) for i in approve or []]
    for values in reject or []:
        if len(values) > 2:
            raise UsageError('--reject takes "why", or an interrupt id and "why"')
        # One value is the reason (the only pending interrupt), or an id (checked later).
        out.append(Requested(values[0], ReviewDecision("reject", text=values[1] if len(values) == 2 else "")))
    for values in edit or []:
        if len(values) > 2:
            raise UsageError("--edit takes PLAN.json, or an interrupt id and PLAN.json")
        tasks = load_tasks(Path(values[-1]))
        out.append(Requested(values[0] if len(values) == 2 else None, ReviewDecision("edit", tasks=tasks)))
    return out


def pending_line(pending: Interrupt) -> str:
    """One pending interrupt as a line: its id, its kind and what it asks."""
    first = describe(pending.value).splitlines()[0] if pending.value is not None else ""
    return f"{pending.id} ({kind_of(pending.value) or 'unknown'}): {first}"


def _match(interrupt_id: str, pending: Sequence[Interrupt]) -> Interrupt | None:
    exact = [p for p in pending if p.id == interrupt_id]
    if exact:
        return exact[0]
    if len(interrupt_id) < MIN_PREFIX:
        return None
    hits = [p for p in pending if p.id.startswith(interrupt_id)]
    return hits[0] if len(hits) == 1 else None


def resume_map(pending: Sequence[Interrupt], requested: Sequence[Requested]) -> dict[str, Any]:
    """The resume map (interrupt id -> answer) for ``requested``; ``UsageError`` saying why not."""
    if not requested:
        raise UsageError(_paused_message(pending))
    chosen: dict[str, ReviewDecision] = {}
    bare: list[ReviewDecision] = []
    for item in requested:
        target = _match(item.interrupt_id, pending) if item.interrupt_id is not None else None
        if item.interrupt_id is not None and target is None:
            if item.decision.action == "reject" and not item.decision.text \
                    and not _ID_LIKE.fullmatch(item.interrupt_id):
                # ``--reject WHY`` with a single value that is no id: the reason.
                bare.append(ReviewDecision("reject", text=item.interrupt_id))
                continue
            raise UsageError(f"no pending interrupt {item.interrupt_id!r}; pending: "
                             + ", ".join(p.id for p in pending) + "\n  "
                             + "\n  ".join(pending_line(p) for p in pending))
        if target is None:
            bare.append(item.decision)
            continue
        if target.id in chosen:
            raise UsageError(f"interrupt {target.id} is answered twice")
        chosen[target.id] = item.decision
    if bare:
        left = [p for p in pending if p.id not in chosen]
        if len(bare) > 1 or len(left) != 1:
            raise UsageError(
                f"{len(left)} interrupts are waiting for an answer: give each one's id, e.g."
                f' --approve ID or --reject ID "why"; pending:\n  '
                + "\n  ".join(pending_line(p) for p in left)
            )
        chosen[left[0].id] = bare[0]
    by_id = {p.id: p for p in pending}
    answers = {}
    for interrupt_id, decision in chosen.items():
        try:
            answers[interrupt_id] = resume_value(by_id[interrupt_id].value, decision)
        except InvalidAnswer as err:
            raise UsageError(f"interrupt {interrupt_id}: {err}") from None
    return answers


def _paused_message(pending: Sequence[Interrupt]) -> str:
    kinds = {kind_of(p.value) for p in pending}
    flags = ('--approve, --edit PLAN.json or --reject "feedback"' if kinds == {"plan_review"}
             else '--approve or --reject "why" (with an interrupt id when several are pending)')
    return f"the run is paused for review: pass {flags}; pending:\n  " + "\n  ".join(
        pending_line(p) for p in pending)


def not_applied(tools: ToolContext, answered: Sequence[Interrupt], answers: Mapping[str, Any],
                still_pending: Sequence[Interrupt]) -> list[str]:
    """The answers in ``answers`` that did not decide their pause, one line each (blocking:
    reads the action ledger).

    Another process may answer the same pause at the same moment. For a tool approval the
    decision recorded first is the one that acts, in both processes (``agents.approval``):
    this tells the other side its own decision was not the one. Any answer whose pause is
    still waiting, the same question under the same id, was dropped (its pause moved on
    before it arrived, or was asked again): that is said too."""
    lines: list[str] = []
    keys = {p.id: p.value.get("action_key") for p in answered
            if kind_of(p.value) == "tool_approval" and p.id in answers}
    standing = ledger_approvals(tools, [k for k in keys.values() if isinstance(k, str)])
    waiting = {(p.id, p.value.get(QUESTION_FIELD)) for p in still_pending
               if isinstance(p.value, Mapping)}
    for pause in answered:
        if pause.id not in answers or not isinstance(pause.value, Mapping):
            continue
        if pause.id in keys:
            mine = "approved" if read_tool_answer(answers[pause.id])[0] else "rejected"
            what = f"your decision ({mine}) on {pause.value.get('tool')} " \
                   f"{json.dumps(pause.value.get('args', {}), default=str)}"
            record = standing.get(str(keys[pause.id]))
            if record is not None and record.decision in ("approved", "rejected") \
                    and record.decision != mine:
                lines.append(f"interrupt {pause.id}: {what} was not applied: it was "
                             f"{record.decision} by an answer recorded first")
                continue
        else:
            what = f"your answer to the {str(kind_of(pause.value) or 'pause').replace('_', ' ')}"
        if (pause.id, pause.value.get(QUESTION_FIELD)) in waiting:
            lines.append(f"interrupt {pause.id}: {what} was not applied: the pause is still "
                         "waiting for an answer")
    return lines
