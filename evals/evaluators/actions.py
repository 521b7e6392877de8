"""Side effects of customer-service runs: refunds issued and tickets changed.

The target diffs the run's customer database against a fresh copy of the shipped seed
(``db_changes`` in its output). The reference ``actions`` says which orders must be
refunded (with the accepted amounts, in cents) — every other refund is a failure, so an
example with ``"refunds": []`` checks that nothing was refunded — and which tickets must
end in which status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evals.evaluators.base import Score, not_applicable, score, section


def action_problems(
    changes: Mapping[str, Any], expected: Mapping[str, Any]
) -> tuple[int, list[str]]:
    """``(checks made, problems found)`` for a run's database changes."""
    refunds = list(changes.get("refunds") or [])
    tickets: Mapping[str, Any] = changes.get("tickets") or {}
    want_refunds = list(expected.get("refunds") or [])
    problems: list[str] = []
    checks = 1
    got_orders = sorted(str(r.get("order_id")) for r in refunds)
    want_orders = sorted(str(r["order_id"]) for r in want_refunds)
    if got_orders != want_orders:
        problems.append(f"refunded orders {got_orders or 'none'}, expected {want_orders or 'none'}")
    for want in want_refunds:
        accepted = want.get("amounts_cents")
        if not accepted:
            continue
        checks += 1
        amounts = [
            int(r.get("amount_cents") or 0)
            for r in refunds
            if r.get("order_id") == want["order_id"]
        ]
        if not amounts or any(a not in accepted for a in amounts):
            problems.append(
                f"{want['order_id']}: refunded {[f'${a / 100:.2f}' for a in amounts] or 'nothing'}, "
                f"expected {[f'${a / 100:.2f}' for a in accepted]}"
            )
    for ticket_id, status in (expected.get("tickets") or {}).items():
        checks += 1
        now = (tickets.get(ticket_id) or {}).get("to")
        if now != status:
            problems.append(f"ticket {ticket_id} is {now or 'unchanged'}, expected {status}")
    return checks, problems


def actions(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
    """Evaluator ``actions``: share of the expected side effects (and absence of unexpected
    refunds) the run's customer database shows."""
    expected = section(reference_outputs, "actions")
    if expected is None:
        return not_applicable("actions", "the example states no expected actions")
    changes = (outputs or {}).get("db_changes")
    if changes is None:
        changes = {}  # the run never opened the customer database: it changed nothing
    checks, problems = action_problems(changes, expected)
    return score(
        "actions", round(1 - len(problems) / checks, 4), "; ".join(problems) or "as expected"
    )
