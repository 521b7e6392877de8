"""Customer-service tools over the customer database (SQLite, or PostgreSQL shared by hosts): lookups and two high-risk actions.

``lookup_customer``, ``lookup_order`` and ``lookup_ticket`` read; ``issue_refund`` and
``update_ticket`` write and carry ``metadata={"risk": "high"}`` so the agent layer asks a
human first. The refund rules (``tools.refund_rules``) mirror the sample ``refund-policy.md`` and
``escalation-policy.md``: 30 days from delivery, never more than what is left to refund,
at most $500 and one refund per order without a team lead.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, field_validator

from tools.actions import ActionArgs, record_outcome, recorded_outcome, replayed
from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext
from tools.customer_db import Connection, Row, connect
from tools.customer_db import build_sample_db as build_sample_db  # re-exported
from tools.customer_records import CustomerRecord, OrderRecord, TicketRecord, ids_in
from tools.refund_rules import (
    AGENT_REFUND_LIMIT_CENTS,
    day,
    days_since,
    money,
    policy_facts,
    refund_blocker,
    refund_lines,
    refund_verdict,
)

ACTION = ToolTraits(mutates=True, needs_approval=True, for_customer=True)
"""The traits of the two actions: they change the customer's records, a human approves
each, and they run only for the customer the request is about."""

TICKET_STATUSES = ("open", "pending", "escalated", "resolved", "closed")
TicketStatus = Literal["open", "pending", "escalated", "resolved", "closed"]

def _norm_id(raw: str, prefix: str) -> str:
    """'o1001', '#O1001', '1001' -> 'O1001' (small models vary the form)."""
    value = raw.strip().lstrip("#").strip().upper()
    if value.isdigit():
        value = prefix + value
    return value


def _refunded_cents(conn: Connection, order_id: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM refunds WHERE order_id=?",
        (order_id,),
    ).fetchone()
    return int(row[0]), int(row[1])


MAX_REFUND_CENTS = 100_000_000
"""No refund is larger than this ($1,000,000): bigger amounts are typing errors."""


def amount_cents(amount: float) -> int:
    """A refund amount in dollars as cents, refused unless finite, positive, at most two
    decimals and within bounds (checked before any key or record is computed from it)."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ToolInputError(f"amount must be a number of dollars, got {amount!r}")
    if not math.isfinite(amount):
        raise ToolInputError(f"amount must be a finite number of dollars, got {amount!r}")
    if amount <= 0:
        raise ToolInputError(f"amount must be positive, got {amount!r}")
    if amount * 100 > MAX_REFUND_CENTS:
        raise ToolInputError(f"amount {amount!r} is above {money(MAX_REFUND_CENTS)}; not a refund")
    cents = round(amount * 100)
    if abs(amount * 100 - cents) > 1e-6:
        raise ToolInputError(f"amount must have at most two decimals (whole cents), got {amount!r}")
    return cents


def _not_theirs(kind: str, record_id: str, owner: str, acting_for: str | None) -> str | None:
    """Why an action on ``record_id`` (of ``owner``) may not run for ``acting_for``, or None.

    ``acting_for`` is the customer the request is about, set by the agent layer for every
    action it runs (``""``: the request established no single customer); None means the
    caller is not an agent (an operator's script) and no request limits it."""
    if acting_for is None or acting_for == owner:
        return None
    if not acting_for:
        return (
            f"{kind} {record_id} belongs to customer {owner}, and this request establishes no "
            "single customer; an action runs only for the customer the request is about"
        )
    return (
        f"{kind} {record_id} belongs to customer {owner}, not to customer {acting_for}, whom "
        "this request is about; an action runs only for its owner"
    )


# -- lookups -----------------------------------------------------------------------------


class _Stated:
    """Collects every date and amount a record's text states, as it is written."""

    def __init__(self) -> None:
        self.dates: set[str] = set()
        self.amounts: set[int] = set()

    def money(self, cents: int) -> str:
        self.amounts.add(int(cents))
        return money(cents)

    def day(self, ts: str | None) -> str:
        text = day(ts)
        if ts:
            self.dates.add(text)
        return text

    def text(self, line: str) -> str:
        """A line worked out elsewhere (the policy facts): its dates and amounts, as data
        the rules computed, are recorded from the line itself."""
        self.dates.update(_ISO_DATE.findall(line))
        self.amounts.update(round(float(m.replace(",", "")) * 100) for m in _MONEY.findall(line))
        return line


_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_MONEY = re.compile(r"\$(\d[\d,]*\.\d\d)")


def customer_record(ctx: ToolContext, customer_id: str | None, email: str | None) -> CustomerRecord:
    """A customer by id or email, with their orders and tickets (blocking)."""
    if not (customer_id or email):
        raise ToolInputError("give customer_id (e.g. C001) or email")
    with connect(ctx) as conn:
        if customer_id:
            cid = _norm_id(customer_id, "C")
            row = conn.execute("SELECT * FROM customers WHERE id=?", (cid,)).fetchone()
            missing = f"no customer with id {cid!r}"
        else:
            assert email is not None
            row = conn.execute("SELECT * FROM customers WHERE email=?", (email.strip(),)).fetchone()
            missing = f"no customer with email {email.strip()!r}"
        if row is None:
            raise ToolInputError(missing)
        orders = conn.execute(
            "SELECT id, status, total_cents, created_at FROM orders WHERE customer_id=? "
            "ORDER BY created_at DESC",
            (row["id"],),
        ).fetchall()
        tickets = conn.execute(
            "SELECT id, status, priority, subject FROM tickets WHERE customer_id=? "
            "ORDER BY created_at DESC",
            (row["id"],),
        ).fetchall()
        refunds = conn.execute(
            "SELECT COUNT(*) FROM refunds r JOIN orders o ON o.id=r.order_id "
            "WHERE o.customer_id=? AND r.created_at >= datetime('now', '-90 days')",
            (row["id"],),
        ).fetchone()[0]
    s = _Stated()
    lines = [
        f"Customer {row['id']}: {row['name']} <{row['email']}>, phone {row['phone']}, "
        f"tier {row['tier']}, customer since {s.day(row['created_at'])}",
        f"Refunds in the last 90 days: {refunds}",
        f"Orders ({len(orders)}): "
        + "; ".join(
            f"{o['id']} {o['status']} {s.money(o['total_cents'])} ({s.day(o['created_at'])})"
            for o in orders
        ),
        f"Tickets ({len(tickets)}): "
        + "; ".join(f'{t["id"]} {t["status"]}/{t["priority"]} "{t["subject"]}"' for t in tickets),
    ]
    return CustomerRecord(
        id=str(row["id"]), name=str(row["name"]), text="\n".join(lines),
        orders=tuple(str(o["id"]) for o in orders), tickets=tuple(str(t["id"]) for t in tickets),
        order_status={str(o["id"]): str(o["status"]) for o in orders},
        dates=frozenset(s.dates), amounts=frozenset(s.amounts),
    )  # fmt: skip


def order_record(ctx: ToolContext, order_id: str) -> OrderRecord:
    """An order with its items, refunds, tickets and refund verdict (blocking)."""
    oid = _norm_id(order_id, "O")
    now = datetime.now(UTC)
    with connect(ctx) as conn:
        order = conn.execute(
            "SELECT o.*, c.name AS customer_name FROM orders o "
            "JOIN customers c ON c.id=o.customer_id WHERE o.id=?",
            (oid,),
        ).fetchone()
        if order is None:
            raise ToolInputError(f"no order with id {oid!r}")
        items = conn.execute(
            "SELECT * FROM order_items WHERE order_id=? ORDER BY sku", (oid,)
        ).fetchall()
        refunds = conn.execute(
            "SELECT * FROM refunds WHERE order_id=? ORDER BY created_at", (oid,)
        ).fetchall()
        tickets = conn.execute("SELECT id, status FROM tickets WHERE order_id=?", (oid,)).fetchall()
    refunded = sum(r["amount_cents"] for r in refunds)
    delivered_age = days_since(order["delivered_at"], now)
    s = _Stated()
    lines = [
        f"Order {oid} for {order['customer_id']} ({order['customer_name']}): "
        f"status {order['status']}, {order['shipping_method']} shipping",
        f"Placed {s.day(order['created_at'])}; shipped {s.day(order['shipped_at'])}; "
        f"delivered {s.day(order['delivered_at'])}"
        + (f" ({delivered_age} days ago)" if delivered_age is not None else "")
        + (f"; tracking {order['tracking_number']}" if order["tracking_number"] else ""),
        "Items: "
        + "; ".join(
            f"{i['quantity']} x {i['name']} ({i['sku']}) @ {s.money(i['unit_price_cents'])}"
            for i in items
        ),
        f"Shipping {s.money(order['shipping_cents'])}; total paid {s.money(order['total_cents'])}; "
        f"refunded {s.money(refunded)}; left to refund {s.money(order['total_cents'] - refunded)}",
    ]
    for r in refunds:
        lines.append(
            f"Refund #{r['id']}: {s.money(r['amount_cents'])} on {s.day(r['created_at'])} — {r['reason']}"
        )
    verdict = refund_verdict(order, items, refunded, len(refunds), now)
    lines += [s.text(line) for line in refund_lines(verdict)]
    lines += [s.text(line) for line in policy_facts(order, items, now)]
    if tickets:
        lines.append("Tickets: " + ", ".join(f"{t['id']} ({t['status']})" for t in tickets))
    return OrderRecord(
        id=oid, owner=str(order["customer_id"]), status=str(order["status"]),
        text="\n".join(lines), verdict=verdict, tracking=order["tracking_number"] or None,
        tickets=tuple(str(t["id"]) for t in tickets),
        dates=frozenset(s.dates), amounts=frozenset(s.amounts),
    )  # fmt: skip


def ticket_record(ctx: ToolContext, ticket_id: str) -> TicketRecord:
    """A ticket with its customer and latest notes (blocking)."""
    tid = _norm_id(ticket_id, "T")
    with connect(ctx) as conn:
        t = conn.execute(
            "SELECT t.*, c.name AS customer_name, c.tier FROM tickets t "
            "JOIN customers c ON c.id=t.customer_id WHERE t.id=?",
            (tid,),
        ).fetchone()
        if t is None:
            raise ToolInputError(f"no ticket with id {tid!r}")
        notes = conn.execute(
            "SELECT * FROM ticket_notes WHERE ticket_id=? ORDER BY created_at, id", (tid,)
        ).fetchall()
    s = _Stated()
    lines = [
        f'Ticket {tid}: "{t["subject"]}"',
        f"Status {t['status']}, priority {t['priority']}; customer {t['customer_id']} "
        f"({t['customer_name']}, tier {t['tier']}); order {t['order_id'] or '—'}",
        f"Opened {s.day(t['created_at'])} {t['created_at'][11:16]} UTC; last update "
        f"{s.day(t['updated_at'])} {t['updated_at'][11:16]} UTC",
    ]
    lines += [f"- {s.day(n['created_at'])} {n['created_at'][11:16]} {n['author']}: {n['body']}"
              for n in notes[-8:]]  # fmt: skip
    return TicketRecord(
        id=tid, owner=str(t["customer_id"]), status=str(t["status"]), subject=str(t["subject"]),
        text="\n".join(lines), order_id=t["order_id"] or None,
        notes=tuple(str(n["body"]) for n in notes[-8:]),
        dates=frozenset(s.dates), amounts=frozenset(s.amounts),
    )  # fmt: skip


def owner_of(ctx: ToolContext, kind: str, record_id: str) -> str | None:
    """The customer an order or ticket belongs to (a customer: themselves); None when
    there is no such record (blocking)."""
    table = {"customer": "customers", "order": "orders", "ticket": "tickets"}[kind]
    column = "id" if kind == "customer" else "customer_id"
    with connect(ctx) as conn:
        row = conn.execute(f"SELECT {column} FROM {table} WHERE id=?", (record_id,)).fetchone()
    return None if row is None else str(row[0])


_RECORD_ARGS = {"order_id": ("order", "O"), "ticket_id": ("ticket", "T"), "customer_id": ("customer", "C")}


def owners_line(ctx: ToolContext, args: dict[str, Any], acting_for: str) -> str:
    """For a reviewer: the owner of each record an action's arguments name, and the
    customer the request is about (blocking)."""
    parts: list[str] = []
    for arg, (kind, prefix) in _RECORD_ARGS.items():
        value = args.get(arg)
        if not isinstance(value, str) or not value.strip():
            continue
        rid = _norm_id(value, prefix)
        owner = owner_of(ctx, kind, rid)
        parts.append(f"{kind} {rid} of customer {owner}" if owner else f"{kind} {rid} (not found)")
    touched = "; ".join(parts) or "none named"
    about = f"customer {acting_for}" if acting_for else "no single customer"
    return f"Records this action touches: {touched}. The request is about {about}."


@dataclass(frozen=True)
class Requester:
    """The customer a request is about: the one every action of its task must be for."""

    customer: str | None
    """Their id, or None when the request establishes no single customer."""
    why: str
    """How it was established, or why it could not be (shown when an action is refused)."""


def requester_of(ctx: ToolContext, text: str) -> Requester:
    """The customer ``text`` is about, established by code: the one customer id it names;
    else the one customer its orders and tickets belong to. Several customers, or none,
    establish nobody (and every action is then refused) (blocking)."""
    ids = ids_in(text)
    customers = ids["customer"]
    if len(customers) == 1:
        return Requester(customers[0], f"the request names customer {customers[0]}")
    if customers:
        return Requester(None, f"the request names several customers ({', '.join(customers)})")
    owners: dict[str, str] = {}
    for kind in ("order", "ticket"):
        for rid in ids[kind]:
            owner = owner_of(ctx, kind, rid)
            if owner is not None:
                owners.setdefault(owner, rid)
    if len(owners) == 1:
        (owner, rid), = owners.items()
        return Requester(owner, f"the request is about {rid} of customer {owner}")
    if owners:
        listed = ", ".join(f"{rid} of {c}" for c, rid in owners.items())
        return Requester(None, f"the request is about records of several customers ({listed})")
    return Requester(None, "the request names no customer, order or ticket")


def _customer(ctx: ToolContext, customer_id: str | None, email: str | None) -> str:
    return customer_record(ctx, customer_id, email).text


def _order(ctx: ToolContext, order_id: str) -> str:
    return order_record(ctx, order_id).text


def _ticket(ctx: ToolContext, ticket_id: str) -> str:
    return ticket_record(ctx, ticket_id).text


# -- actions -----------------------------------------------------------------------------
#
# Both actions are idempotent: under one idempotency key the effect and the record of its
# outcome commit in one transaction (``tools.actions``), and a repeated call returns the
# recorded outcome. Their rules are checked inside the same transaction; ``refund_problem``
# and ``ticket_problem`` run the same checks read-only, so nobody is asked to approve an
# action the rules would refuse anyway.


def _refund_check(conn: Connection, oid: str, cents: int, now: datetime) -> tuple[Row, int, str | None]:
    """(order, refunded so far, why this refund cannot be issued or None)."""
    order = conn.execute("SELECT * FROM orders WHERE id=?", (oid,)).fetchone()
    if order is None:
        raise ToolInputError(f"no order with id {oid!r}; refund not issued")
    refunded, count = _refunded_cents(conn, oid)
    blocker = refund_blocker(order, refunded, count, now)
    remaining = order["total_cents"] - refunded
    if blocker:
        return order, refunded, blocker.text
    if cents > remaining:
        return order, refunded, (
            f"{money(cents)} exceeds what is left to refund on {oid} "
            f"({money(remaining)} of {money(order['total_cents'])} paid)"
        )
    if cents > AGENT_REFUND_LIMIT_CENTS:
        return order, refunded, (
            f"{money(cents)} is above the agent limit of {money(AGENT_REFUND_LIMIT_CENTS)}; "
            "escalate the ticket to a team lead"
        )
    return order, refunded, None


def _refund(
    ctx: ToolContext, order_id: str, amount: float, reason: str, key: str | None = None,
    acting_for: str | None = None,
) -> str:
    oid = _norm_id(order_id, "O")
    cents = amount_cents(amount)
    if not reason.strip():
        raise ToolInputError("give a reason for the refund")
    now = datetime.now(UTC)
    with connect(ctx) as conn:
        conn.execute("BEGIN IMMEDIATE")  # check and insert atomically
        done = recorded_outcome(conn, key)
        if done is not None:
            conn.rollback()
            return replayed(done)
        try:
            order, refunded, problem = _refund_check(conn, oid, cents, now)
        except ToolInputError:
            conn.rollback()
            raise
        problem = _not_theirs("order", oid, str(order["customer_id"]), acting_for) or problem
        if problem:
            conn.rollback()
            raise ToolInputError(f"refund not issued: {problem}")
        cur = conn.execute(
            "INSERT INTO refunds (order_id, amount_cents, reason, created_at, created_by, "
            "idempotency_key) VALUES (?, ?, ?, ?, 'agent', ?)",
            (oid, cents, reason.strip(), now.strftime("%Y-%m-%d %H:%M:%S"), key),
        )
        outcome = (
            f"Refund #{cur.lastrowid} of {money(cents)} issued for order {oid} "
            f"(customer {order['customer_id']}). Refunded so far: {money(refunded + cents)} of "
            f"{money(order['total_cents'])}. It reaches the original payment method in 5-10 "
            "business days."
        )
        record_outcome(conn, key, "issue_refund", {"order_id": oid, "amount_cents": cents},
                       ctx.run_id, outcome)
        conn.commit()
    return outcome


def _ticket_check(
    conn: Connection, tid: str, status: str, note: str, acting_for: str | None = None
) -> tuple[str, str | None]:
    """(the ticket's status now, why this update cannot be made or None)."""
    row = conn.execute("SELECT status, customer_id FROM tickets WHERE id=?", (tid,)).fetchone()
    if row is None:
        raise ToolInputError(f"no ticket with id {tid!r}; nothing updated")
    old = str(row["status"])
    if problem := _not_theirs("ticket", tid, str(row["customer_id"]), acting_for):
        return old, problem
    if old == "closed":
        return old, f"ticket {tid} is closed (final); open a new ticket instead"
    if old == "escalated" and status in ("resolved", "closed"):
        return old, f"ticket {tid} is escalated; the team that owns it resolves it, not the agent"
    if old == status:
        bodies = conn.execute("SELECT body FROM ticket_notes WHERE ticket_id=?", (tid,)).fetchall()
        if any(" ".join(str(b[0]).split()) == " ".join(note.split()) for b in bodies):
            return old, f"ticket {tid} is already {status} with this note; nothing to change"
    return old, None


def _update_ticket(
    ctx: ToolContext, ticket_id: str, status: str, note: str, key: str | None = None,
    acting_for: str | None = None,
) -> str:
    tid = _norm_id(ticket_id, "T")
    if status not in TICKET_STATUSES:
        raise ToolInputError(f"status must be one of {', '.join(TICKET_STATUSES)}")
    if not note.strip():
        raise ToolInputError("give a note describing the update")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    with connect(ctx) as conn:
        conn.execute("BEGIN IMMEDIATE")
        done = recorded_outcome(conn, key)
        if done is not None:
            conn.rollback()
            return replayed(done)
        try:
            old, problem = _ticket_check(conn, tid, status, note, acting_for)
        except ToolInputError:
            conn.rollback()
            raise
        if problem:
            conn.rollback()
            raise ToolInputError(problem)
        conn.execute("UPDATE tickets SET status=?, updated_at=? WHERE id=?", (status, stamp, tid))
        conn.execute(
            "INSERT INTO ticket_notes (ticket_id, created_at, author, body, idempotency_key) "
            "VALUES (?, ?, 'agent', ?, ?)",
            (tid, stamp, note.strip(), key),
        )
        outcome = f"Ticket {tid} updated: status {old} -> {status}; note added."
        record_outcome(conn, key, "update_ticket",
                       {"ticket_id": tid, "status": status, "note": " ".join(note.split())},
                       ctx.run_id, outcome)
        conn.commit()
    return outcome


def refund_problem(ctx: ToolContext, args: IssueRefundArgs) -> str | None:
    """Why this refund would repeat one that exists or touch another customer's order
    (read-only), or None.

    Only these are reported: a reviewer is not asked to approve an effect that is already
    there, nor one for the wrong customer. Every other rule is checked when it runs."""
    oid = args.identity()["order_id"]
    with connect(ctx) as conn:
        refunds = conn.execute(
            "SELECT id, amount_cents FROM refunds WHERE order_id=? ORDER BY id", (oid,)
        ).fetchall()
        owner = conn.execute("SELECT customer_id FROM orders WHERE id=?", (oid,)).fetchone()
    if owner is not None and (problem := _not_theirs("order", oid, str(owner[0]), args.acting_for)):
        return problem
    if not refunds:
        return None
    done = ", ".join(f"#{r['id']} of {money(r['amount_cents'])}" for r in refunds)
    return f"order {oid} already has a refund ({done}); a second refund needs a team lead"


def ticket_problem(ctx: ToolContext, args: UpdateTicketArgs) -> str | None:
    """Why this ticket update would repeat one that exists or touch another customer's
    ticket (read-only), or None."""
    ident = args.identity()
    with connect(ctx) as conn:
        row = conn.execute(
            "SELECT customer_id FROM tickets WHERE id=?", (ident["ticket_id"],)
        ).fetchone()
        if row is not None and (
            problem := _not_theirs("ticket", ident["ticket_id"], str(row[0]), args.acting_for)
        ):
            return problem
        try:
            problem = _ticket_check(conn, ident["ticket_id"], ident["status"], ident["note"])[1]
        except ToolInputError:
            return None
    return problem if problem and "already" in problem else None


# -- tools -------------------------------------------------------------------------------


class LookupCustomerArgs(BaseModel):
    customer_id: str | None = Field(default=None, description="Customer id, e.g. 'C001'.")
    email: str | None = Field(default=None, description="Customer email (if no id is known).")


class LookupOrderArgs(BaseModel):
    order_id: str = Field(description="Order id, e.g. 'O1001'.")


class LookupTicketArgs(BaseModel):
    ticket_id: str = Field(description="Ticket id, e.g. 'T501'.")


class IssueRefundArgs(ActionArgs):
    order_id: str = Field(description="Order id, e.g. 'O1001'.")
    amount: float = Field(gt=0, allow_inf_nan=False, description="Amount in dollars, e.g. 49.00.")
    reason: str = Field(min_length=3, description="Why the refund is issued (recorded).")

    @field_validator("amount")
    @classmethod
    def _whole_cents(cls, value: float) -> float:
        amount_cents(value)  # finite, positive, at most two decimals, within bounds
        return value

    def identity(self) -> dict[str, Any]:
        """One refund = one order and amount (the reason is its description, not its identity)."""
        return {"order_id": _norm_id(self.order_id, "O"), "amount_cents": amount_cents(self.amount)}


class UpdateTicketArgs(ActionArgs):
    ticket_id: str = Field(description="Ticket id, e.g. 'T501'.")
    status: TicketStatus = Field(description="New status.")
    note: str = Field(min_length=1, description="Note for the ticket history.")

    def identity(self) -> dict[str, Any]:
        return {"ticket_id": _norm_id(self.ticket_id, "T"), "status": self.status,
                "note": " ".join(self.note.split())}


def lookup_customer_tool(ctx: ToolContext) -> BaseTool:
    async def lookup_customer(customer_id: str | None = None, email: str | None = None) -> str:
        return await asyncio.to_thread(_customer, ctx, customer_id, email)

    return make_tool(
        name="lookup_customer",
        description="Look up a customer by id or email: profile, tier, their orders and tickets.",
        args_schema=LookupCustomerArgs,
        coroutine=lookup_customer,
    )


def lookup_order_tool(ctx: ToolContext) -> BaseTool:
    async def lookup_order(order_id: str) -> str:
        return await asyncio.to_thread(_order, ctx, order_id)

    return make_tool(
        name="lookup_order",
        description=(
            "Look up an order: status, dates, items, amounts, refunds so far and how much "
            "an agent may still refund."
        ),
        args_schema=LookupOrderArgs,
        coroutine=lookup_order,
    )


def lookup_ticket_tool(ctx: ToolContext) -> BaseTool:
    async def lookup_ticket(ticket_id: str) -> str:
        return await asyncio.to_thread(_ticket, ctx, ticket_id)

    return make_tool(
        name="lookup_ticket",
        description="Look up a support ticket: subject, status, priority, customer and notes.",
        args_schema=LookupTicketArgs,
        coroutine=lookup_ticket,
    )


def issue_refund_tool(ctx: ToolContext) -> BaseTool:
    async def issue_refund(
        order_id: str, amount: float, reason: str, idempotency_key: str | None = None,
        acting_for: str | None = None,
    ) -> str:
        return await asyncio.to_thread(
            _refund, ctx, order_id, amount, reason, idempotency_key, acting_for
        )

    return make_tool(
        name="issue_refund",
        description=(
            "Issue a refund on an order (HIGH RISK: needs human approval). Rules: within 30 "
            "days of delivery, not more than the amount left to refund, at most $500, one "
            "refund per order. Check the order with lookup_order first."
        ),
        args_schema=IssueRefundArgs,
        coroutine=issue_refund,
        traits=ACTION,
    )


def update_ticket_tool(ctx: ToolContext) -> BaseTool:
    async def update_ticket(
        ticket_id: str, status: str, note: str, idempotency_key: str | None = None,
        acting_for: str | None = None,
    ) -> str:
        return await asyncio.to_thread(
            _update_ticket, ctx, ticket_id, status, note, idempotency_key, acting_for
        )

    return make_tool(
        name="update_ticket",
        description=(
            "Change a ticket's status (open, pending, escalated, resolved, closed) and add a "
            "note (HIGH RISK: needs human approval)."
        ),
        args_schema=UpdateTicketArgs,
        coroutine=update_ticket,
        traits=ACTION,
    )
