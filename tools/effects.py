"""High-risk actions for the agent layer: their identity, their rule checks, their ledger.

The agent layer derives each high-risk call's idempotency key from the call's identity
(``ActionArgs.identity`` of the tool's argument schema), checks for duplicates before asking
a human (an effect that already exists — another request's refund on the order, the same
note on the ticket — is reported, not put to a reviewer), and keeps approvals
in the ledger of the store the action changes (the customer database).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import ValidationError

from tools.actions import (
    KEY_FIELD,
    ActionArgs,
    ApprovalRecord,
    ApprovalWrite,
    approvals,
    recorded_outcome,
    write_approvals,
)
from tools.context import ToolContext
from tools.customer_db import connect
from tools.customer_service import refund_problem, ticket_problem

_CHECKS: dict[str, Callable[[ToolContext, Any], str | None]] = {
    "issue_refund": refund_problem,
    "update_ticket": ticket_problem,
}


def parsed_args(tool: BaseTool, args: Mapping[str, Any]) -> ActionArgs | None:
    """The call's arguments validated by the tool's schema, when it is an idempotent action
    and the arguments are valid; None otherwise."""
    schema = tool.args_schema
    if not (isinstance(schema, type) and issubclass(schema, ActionArgs)):
        return None
    try:
        return schema.model_validate({k: v for k, v in args.items() if k != KEY_FIELD})
    except ValidationError:
        return None


def action_problem(ctx: ToolContext, tool: BaseTool, args: ActionArgs) -> str | None:
    """Why this call would duplicate an effect that exists (read-only), or None."""
    check = _CHECKS.get(tool.name)
    return check(ctx, args) if check else None


def ledger_approvals(ctx: ToolContext, keys: Iterable[str]) -> dict[str, ApprovalRecord]:
    """Recorded approval decisions and open questions for ``keys`` (blocking)."""
    keys = list(keys)
    if not keys:
        return {}
    with connect(ctx) as conn:
        return approvals(conn, keys)


def record_approvals(ctx: ToolContext, writes: Iterable[ApprovalWrite]) -> dict[str, ApprovalRecord]:
    """Store approval questions and decisions in one transaction; return what stands for
    their keys, read in that same transaction (blocking).

    A decision already recorded is never replaced (``write_approvals``), so when two
    processes answer one question at once the first recorded decision is the one returned
    to both, and both act on it: the caller must act on what this returns, never on the
    decision it tried to write."""
    writes = list(writes)
    if not writes:
        return {}
    with connect(ctx) as conn:
        conn.execute("BEGIN IMMEDIATE")
        write_approvals(conn, writes)
        standing = approvals(conn, [w.key for w in writes])
        conn.commit()
    return standing


def ledger_outcome(ctx: ToolContext, key: str) -> str | None:
    """The recorded outcome of the action ``key``, if it ran (blocking)."""
    with connect(ctx) as conn:
        return recorded_outcome(conn, key)
