"""Customer, order and ticket records as data: what the lookups found, typed.

Each lookup tool returns a record's ``text`` to the model; code (the support flow, its
reply checks, the actions' owner check) reads the fields. Every date and amount the text
states is also in ``dates`` and ``amounts``, so a check can tell whether a reply's figure
is one the records show without parsing the text back.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tools.refund_rules import Blocker, OrderLine, RefundVerdict

__all__ = [
    "ID_PATTERNS",
    "CustomerRecord",
    "OrderRecord",
    "Record",
    "TicketRecord",
    "as_state",
    "from_state",
    "ids_in",
]

ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "customer": re.compile(r"\bC\d{3}\b"),
    "order": re.compile(r"\bO\d{4}\b"),
    "ticket": re.compile(r"\bT\d{3}\b"),
}
"""The shapes of the database's ids (structural: ids are data, not wording)."""

Kind = Literal["customer", "order", "ticket"]


def ids_in(text: str) -> dict[str, list[str]]:
    """The customer, order and ticket ids in ``text``, each kind in order of appearance."""
    return {kind: list(dict.fromkeys(rx.findall(text))) for kind, rx in ID_PATTERNS.items()}


@dataclass(frozen=True)
class CustomerRecord:
    """A customer as ``lookup_customer`` found them."""

    id: str
    """The customer id."""
    name: str
    """Their name."""
    text: str
    """The record as the model reads it."""
    orders: tuple[str, ...] = ()
    """Their order ids, newest first."""
    tickets: tuple[str, ...] = ()
    """Their ticket ids, newest first."""
    order_status: dict[str, str] = field(default_factory=dict)
    """Each of their orders' status."""
    dates: frozenset[str] = frozenset()
    """Every date (YYYY-MM-DD) the text states."""
    amounts: frozenset[int] = frozenset()
    """Every amount (cents) the text states."""
    kind: Kind = "customer"

    @property
    def owner(self) -> str:
        """The customer the record belongs to (themselves)."""
        return self.id


@dataclass(frozen=True)
class OrderRecord:
    """An order as ``lookup_order`` found it, with its refund verdict."""

    id: str
    """The order id."""
    owner: str
    """The customer who placed it."""
    status: str
    """pending, processing, shipped, delivered, cancelled or returned."""
    text: str
    """The record as the model reads it."""
    verdict: RefundVerdict
    """What an agent may refund on it now."""
    tracking: str | None = None
    """The carrier's tracking number, if it shipped."""
    tickets: tuple[str, ...] = ()
    """Tickets about the order."""
    dates: frozenset[str] = frozenset()
    """Every date (YYYY-MM-DD) the text states."""
    amounts: frozenset[int] = frozenset()
    """Every amount (cents) the text states."""
    kind: Kind = "order"


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as ``lookup_ticket`` found it."""

    id: str
    """The ticket id."""
    owner: str
    """The customer who opened it."""
    status: str
    """open, pending, escalated, resolved or closed."""
    subject: str
    """The ticket's subject (the customer's words)."""
    text: str
    """The record as the model reads it."""
    order_id: str | None = None
    """The order it is about, if any."""
    notes: tuple[str, ...] = ()
    """The latest notes' bodies (customer's and agents'), oldest first."""
    dates: frozenset[str] = frozenset()
    """Every date (YYYY-MM-DD) the text states."""
    amounts: frozenset[int] = frozenset()
    """Every amount (cents) the text states (none: tickets carry no amounts)."""
    kind: Kind = "ticket"


Record = CustomerRecord | OrderRecord | TicketRecord


def as_state(record: Record) -> dict[str, Any]:
    """A record as plain data (lists, not sets) for a graph's checkpointed state."""
    raw = asdict(record)
    raw["dates"] = sorted(record.dates)
    raw["amounts"] = sorted(record.amounts)
    return raw


def from_state(raw: dict[str, Any]) -> Record:
    """The record ``as_state`` stored."""
    data = dict(raw)
    data["dates"] = frozenset(data.get("dates") or ())
    data["amounts"] = frozenset(int(a) for a in data.get("amounts") or ())
    kind = data.get("kind")
    if kind == "order":
        verdict = dict(data["verdict"])
        blocker = verdict.get("blocker")
        verdict["blocker"] = Blocker(**blocker) if blocker else None
        verdict["return_first"] = tuple(verdict.get("return_first") or ())
        verdict["no_return"] = tuple(verdict.get("no_return") or ())
        verdict["lines"] = tuple(OrderLine(**line) for line in verdict.get("lines") or ())
        data["verdict"] = RefundVerdict(**verdict)
        data["tickets"] = tuple(data.get("tickets") or ())
        return OrderRecord(**data)
    if kind == "ticket":
        data["notes"] = tuple(data.get("notes") or ())
        return TicketRecord(**data)
    if kind == "customer":
        data["orders"] = tuple(data.get("orders") or ())
        data["tickets"] = tuple(data.get("tickets") or ())
        return CustomerRecord(**data)
    raise ValueError(f"not a stored customer record: kind {kind!r}")
