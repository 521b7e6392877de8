"""The action ledger: a high-risk action runs at most once per idempotency key.

Every high-risk call carries an **idempotency key** derived from the run (thread id), an
optional scope label, the task id and the call (tool + the identity of its arguments). The
key is stable across retries, resumes and forks of the same task and new for a genuinely
different request. The store that holds the action's effect keeps two tables beside it:

- ``executed_actions``: one row per key with the outcome the caller saw, written in the
  same transaction as the effect, so an action and its record commit together or not at
  all. A repeated call returns the recorded outcome instead of acting.
- ``action_approvals``: the human decision about one key (approved or rejected, with the
  feedback) and the question that asked it, so a retried or restarted task reuses the
  decision instead of asking again, and a decision never applies to another action.

The functions here work on an open connection (SQLite, or PostgreSQL through ``tools.db``);
the tool that owns the store opens it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from langchain_core.tools import InjectedToolArg
from pydantic import BaseModel, Field

from tools.db import Connection

KEY_FIELD = "idempotency_key"
"""The tool argument that carries the key (injected by the agent layer, hidden from models)."""
ACTING_FOR_FIELD = "acting_for"
"""The tool argument that names the customer the request is about (injected by the agent
layer, hidden from models): an action on another customer's record is refused."""
INJECTED_FIELDS = frozenset({KEY_FIELD, ACTING_FOR_FIELD})
"""Arguments only the orchestrator sets; a model's values for them are dropped."""

LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS executed_actions (
    idempotency_key TEXT PRIMARY KEY,
    tool            TEXT NOT NULL,
    identity        TEXT NOT NULL,
    run_id          TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL,
    executed_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS action_approvals (
    idempotency_key TEXT PRIMARY KEY,
    tool            TEXT NOT NULL,
    identity        TEXT NOT NULL,
    decision        TEXT CHECK (decision IN ('approved', 'rejected', 'blocked')),
    feedback        TEXT NOT NULL DEFAULT '',
    asked_in        TEXT NOT NULL DEFAULT '',
    decided_at      TEXT
);
"""
"""Idempotent: run on every connection of a store (existing databases gain the tables)."""


class ActionArgs(BaseModel):
    """Arguments of a high-risk tool: its own fields plus the injected idempotency key."""

    idempotency_key: Annotated[str | None, InjectedToolArg] = Field(
        default=None, description="Set by the orchestrator, never by the model."
    )
    acting_for: Annotated[str | None, InjectedToolArg] = Field(
        default=None,
        description="The customer the request is about (set by the orchestrator; '' when "
        "the request establishes none; None for an operator's direct call).",
    )

    def identity(self) -> dict[str, Any]:
        """What makes two calls the same action (default: every argument, normalised)."""
        dumped = self.model_dump(mode="json", exclude=set(INJECTED_FIELDS))
        return {k: _normal(v) for k, v in dumped.items()}


def _normal(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def canonical(identity: Mapping[str, Any]) -> str:
    return json.dumps(dict(identity), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def idempotency_key(
    run_id: str, task_id: str, tool: str, identity: Mapping[str, Any], scope: str = ""
) -> str:
    """The key of one action: same run, scope, task, tool and identity -> same key."""
    material = canonical({"run": run_id, "scope": scope, "task": task_id, "tool": tool,
                          "args": canonical(identity)})
    return "act-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ensure_ledger(conn: Connection) -> None:
    conn.executescript(LEDGER_SQL)


# -- executed actions ----------------------------------------------------------------------


REPLAY_NOTE = "(recorded outcome of an action that already ran; it was not repeated)"


def recorded_outcome(conn: Connection, key: str | None) -> str | None:
    """The outcome recorded for ``key``, or None when the action has not run."""
    if not key:
        return None
    row = conn.execute(
        "SELECT outcome FROM executed_actions WHERE idempotency_key=?", (key,)
    ).fetchone()
    return None if row is None else str(row[0])


def replayed(outcome: str) -> str:
    """What a repeated call returns: the original outcome, marked as a replay."""
    return f"{outcome} {REPLAY_NOTE}"


def record_outcome(
    conn: Connection, key: str | None, tool: str, identity: Mapping[str, Any],
    run_id: str, outcome: str,
) -> None:
    """Record an action's outcome inside the caller's transaction (the one of the effect).

    The primary key makes a second execution under the same key fail the whole transaction,
    effect included."""
    if key:
        conn.execute(
            "INSERT INTO executed_actions (idempotency_key, tool, identity, run_id, outcome, "
            "executed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, tool, canonical(identity), run_id, outcome, _now()),
        )


# -- approvals -----------------------------------------------------------------------------

Decision = Literal["approved", "rejected", "blocked"]


@dataclass(frozen=True)
class ApprovalRecord:
    """What the ledger knows about the approval of one action."""

    key: str
    decision: Decision | None
    """None while the question is open."""
    feedback: str
    asked_in: str
    """The question sequence (the approval node's checkpoint namespace) that asked it."""


def approvals(conn: Connection, keys: Iterable[str]) -> dict[str, ApprovalRecord]:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    marks = ",".join("?" for _ in wanted)
    rows = conn.execute(
        "SELECT idempotency_key, decision, feedback, asked_in FROM action_approvals "
        f"WHERE idempotency_key IN ({marks})",
        wanted,
    ).fetchall()
    return {str(r[0]): ApprovalRecord(str(r[0]), r[1], str(r[2] or ""), str(r[3] or "")) for r in rows}


@dataclass(frozen=True)
class ApprovalWrite:
    """One change to the approvals table."""

    key: str
    tool: str
    identity: Mapping[str, Any]
    decision: Decision | None
    feedback: str = ""
    asked_in: str = ""


def write_approvals(conn: Connection, writes: Iterable[ApprovalWrite]) -> None:
    """Insert or update approval rows in one transaction. A final decision (approved or
    rejected) is never overwritten by another: the first one recorded stands."""
    for w in writes:
        conn.execute(
            "INSERT INTO action_approvals (idempotency_key, tool, identity, decision, feedback, "
            "asked_in, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(idempotency_key) DO UPDATE SET decision=excluded.decision, "
            "feedback=excluded.feedback, asked_in=excluded.asked_in, decided_at=excluded.decided_at "
            "WHERE action_approvals.decision IS NULL OR action_approvals.decision = 'blocked'",
            (w.key, w.tool, canonical(w.identity), w.decision, w.feedback, w.asked_in,
             _now() if w.decision else None),
        )
