"""The refund and shipping rules of the sample policies, computed by code for an order.

They mirror ``refund-policy.md``, ``shipping-policy.md`` and ``escalation-policy.md``: a
30-day window from delivery, at most what is left to refund, at most $500 and one refund
per order without a team lead, a $6.95 return label deducted when the return is not our
fault, no return needed for damaged items under $50, and the lost-package rule (10
business days past the expected delivery). A small model gets dates and amounts wrong;
the order lookup states them already worked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from tools.customer_db import Row

REFUND_WINDOW_DAYS = 30
AGENT_REFUND_LIMIT_CENTS = 50_000
RETURN_LABEL_CENTS = 695
NO_RETURN_BELOW_CENTS = 5_000
LOST_AFTER_BUSINESS_DAYS = 10
DELIVERY_BUSINESS_DAYS = {"standard": 5, "express": 2, "international": 14}
"""The latest delivery time of each shipping method (shipping-policy.md)."""
ACCESSORY_WORDS = ("cable", "case", "charger")
"""Accessories by the warranty policy's own list (6 months)."""


def warranty_of(name: str) -> tuple[str, int]:
    """(class, days) of an item's warranty by the warranty policy: the Pro line 2 years,
    accessories 6 months, refurbished 90 days, standard products 1 year."""
    lowered = name.lower()
    if "refurbished" in lowered:
        return "refurbished, 90 days", 90
    if any(w in lowered.split() for w in ACCESSORY_WORDS):
        return "accessory, 6 months", 182
    if "pro" in lowered.split():
        return "Pro line, 2 years", 730
    return "standard product, 1 year", 365


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts).replace(tzinfo=UTC)


def day(ts: str | None) -> str:
    return ts[:10] if ts else "—"


def days_since(ts: str | None, now: datetime) -> int | None:
    """Calendar days from ``ts`` to ``now`` (the policy's "delivered 15 days ago"; a
    difference of timestamps would say 14 a second before the 15th day is complete)."""
    when = parse_ts(ts)
    return None if when is None else (now.date() - when.date()).days


def add_business_days(start: date, n: int) -> date:
    current = start
    while n > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            n -= 1
    return current


def business_days_between(start: date, end: date) -> int:
    """Business days after ``start`` up to and including ``end`` (0 if ``end`` is earlier)."""
    count, current = 0, start
    while current < end:
        current += timedelta(days=1)
        if current.weekday() < 5:
            count += 1
    return count


BlockerKind = Literal["not_shipped", "cancelled", "fully_refunded", "second_refund", "outside_window"]


@dataclass(frozen=True)
class Blocker:
    """Why no agent may refund an order now."""

    kind: BlockerKind
    """Which rule blocks it (code reads this)."""
    text: str
    """The rule as the records state it (for people and the model)."""

    @property
    def ineligible(self) -> bool:
        """Whether the order is plainly not refundable (not a team lead's call either)."""
        return self.kind in ("not_shipped", "cancelled", "outside_window")


@dataclass(frozen=True)
class OrderLine:
    """One item line of an order, as a partial refund reads it."""

    sku: str
    """The product's stock-keeping unit (unique within the order)."""
    name: str
    """The product's name, as the records and the customer say it."""
    quantity: int
    """How many were ordered."""
    unit_cents: int
    """The price of one."""

    @property
    def total_cents(self) -> int:
        """What the line cost."""
        return self.quantity * self.unit_cents


@dataclass(frozen=True)
class RefundVerdict:
    """What an agent may refund on one order now, worked out by code from the records.

    The order lookup renders it as text for the model; the refund action, the approval
    request and the support flow read its fields."""

    order_id: str
    """The order."""
    owner: str
    """The customer the order belongs to: only a request about them may refund it."""
    paid_cents: int
    """What the customer paid (items and shipping)."""
    refunded_cents: int
    """Refunded so far."""
    blocker: Blocker | None
    """Why no agent may refund now, or None when a refund is possible."""
    cap_cents: int
    """The most an agent may refund now (0 when blocked)."""
    label_refund_cents: int | None
    """The refund when the return is not caused by a defect, damage or our error (the
    return label deducted); None when no label applies (not delivered, or above the limit)."""
    return_first: tuple[str, ...] = ()
    """Items of $50 or more: if damaged or defective on arrival, returned before the refund."""
    no_return: tuple[str, ...] = ()
    """Items under $50: if damaged or defective, refunded without a return."""
    lines: tuple[OrderLine, ...] = ()
    """The order's item lines (a partial refund is for one of them)."""
    shipping_cents: int = 0
    """The original shipping fee (refunded with an item only when the return is our fault)."""
    delivered: bool = True
    """Whether the order was delivered (a return label applies only then)."""

    @property
    def remaining_cents(self) -> int:
        """What is left to refund on the order."""
        return self.paid_cents - self.refunded_cents

    @property
    def over_agent_limit(self) -> bool:
        """Whether what is left is above the agent limit (a full refund needs a team lead)."""
        return self.blocker is None and self.remaining_cents > AGENT_REFUND_LIMIT_CENTS

    @property
    def approver(self) -> Literal["reviewer", "team lead"] | None:
        """Who must approve the refund the order calls for: a reviewer (any agent refund),
        a team lead (above the agent limit, or a second refund), or nobody (none possible)."""
        if self.blocker is None:
            return "team lead" if self.over_agent_limit else "reviewer"
        return "team lead" if self.blocker.kind == "second_refund" else None

    @property
    def eligible(self) -> bool | None:
        """Yes or no when the records make it plain, None when it is a team lead's call."""
        if self.blocker is not None:
            return False if self.blocker.ineligible else None
        return None if self.over_agent_limit else True

    @property
    def why(self) -> str:
        """Why a refund is blocked, or what bounds it."""
        if self.blocker is not None:
            return self.blocker.text
        if self.over_agent_limit:
            return (
                f"a full refund of {money(self.remaining_cents)} is above the $500 agent limit "
                "and needs a team lead's approval (escalate the ticket)"
            )
        return "full amount left on the order"

    def line(self, sku: str) -> OrderLine | None:
        """The item line ``sku``, or None."""
        return next((line for line in self.lines if line.sku == sku), None)

    def item_amount_cents(self, sku: str, our_fault: bool) -> int | None:
        """The partial refund an agent may issue for one item (one unit of line ``sku``), or
        None: its price, with the original shipping fee when the return is our fault (defect,
        damage, our error), less the return label otherwise; at most what is left and the
        agent limit."""
        line = self.line(sku)
        if line is None or self.blocker is not None:
            return None
        amount = line.unit_cents
        if our_fault:
            amount += self.shipping_cents
        elif self.delivered:
            amount -= RETURN_LABEL_CENTS
        if amount <= 0 or amount > AGENT_REFUND_LIMIT_CENTS:
            return None
        return min(amount, self.remaining_cents)

    def amount_cents(self, our_fault: bool) -> int | None:
        """The refund an agent may issue, or None: a return caused by a defect, damage or
        our error gets what is left; any other gets it less the return label."""
        if self.blocker is not None or self.over_agent_limit:
            return None
        if not our_fault and self.label_refund_cents is not None:
            return self.label_refund_cents
        return self.cap_cents


def refund_blocker(order: Row, refunded: int, refund_count: int, now: datetime) -> Blocker | None:
    """Why no refund can be issued on ``order`` by an agent now, or None if it can."""
    status = order["status"]
    oid = order["id"]
    if status in ("pending", "processing"):
        return Blocker(
            "not_shipped", f"order {oid} has not shipped ({status}); cancel it instead of refunding"
        )
    if status == "cancelled":
        return Blocker("cancelled", f"order {oid} was cancelled; the payment was already released")
    if refunded >= order["total_cents"]:
        return Blocker("fully_refunded", f"order {oid} is already fully refunded ({money(refunded)})")
    if refund_count >= 1:
        return Blocker(
            "second_refund",
            f"order {oid} already has a refund; a second refund needs a team lead "
            "(escalate the ticket)",
        )
    age = days_since(order["delivered_at"], now)
    if age is not None and age > REFUND_WINDOW_DAYS:
        return Blocker(
            "outside_window",
            f"order {oid} was delivered {age} days ago, outside the "
            f"{REFUND_WINDOW_DAYS}-day refund window (use the warranty policy or escalate)",
        )
    return None


def refund_verdict(
    order: Row, items: list[Row], refunded: int, refund_count: int, now: datetime
) -> RefundVerdict:
    """The refund verdict of ``order`` now (its rules: the window, the cap, the limit, the
    label, the damaged-item return rule)."""
    blocker = refund_blocker(order, refunded, refund_count, now)
    remaining = order["total_cents"] - refunded
    cap = 0 if blocker else min(remaining, AGENT_REFUND_LIMIT_CENTS)
    label = (
        remaining - RETURN_LABEL_CENTS
        if blocker is None and order["delivered_at"]
        and RETURN_LABEL_CENTS < remaining <= AGENT_REFUND_LIMIT_CENTS
        else None
    )
    return RefundVerdict(
        order_id=str(order["id"]), owner=str(order["customer_id"]),
        paid_cents=int(order["total_cents"]), refunded_cents=refunded, blocker=blocker,
        cap_cents=cap, label_refund_cents=label,
        return_first=tuple(i["name"] for i in items if i["unit_price_cents"] >= NO_RETURN_BELOW_CENTS),
        no_return=tuple(i["name"] for i in items if i["unit_price_cents"] < NO_RETURN_BELOW_CENTS),
        lines=tuple(OrderLine(str(i["sku"]), str(i["name"]), int(i["quantity"]),
                              int(i["unit_price_cents"])) for i in items),
        shipping_cents=int(order["shipping_cents"] or 0), delivered=bool(order["delivered_at"]),
    )  # fmt: skip


def refund_lines(verdict: RefundVerdict) -> list[str]:
    """The verdict as the order lookup states it: the cap, and the cap less the label."""
    if verdict.blocker:
        return [f"Refund by agent: not possible — {verdict.blocker.text}"]
    remaining = verdict.remaining_cents
    lines = [
        f"Refund by agent: up to {money(verdict.cap_cents)}"
        + (
            f" (the {money(remaining)} left is above the $500 agent limit: a full refund "
            "needs a team lead's approval)"
            if verdict.over_agent_limit
            else ""
        )
    ]
    if verdict.label_refund_cents is not None:
        lines.append(
            f"Return not caused by a defect, damage or our error: the {money(RETURN_LABEL_CENTS)} "
            f"return label is deducted, refund {money(verdict.label_refund_cents)}"
        )
    return lines


def policy_facts(order: Row, items: list[Row], now: datetime) -> list[str]:
    """The order's refund window, lost-package and damaged-item rules, worked out."""
    facts: list[str] = []
    delivered = parse_ts(order["delivered_at"])
    if delivered is not None:
        age = (now.date() - delivered.date()).days
        left = REFUND_WINDOW_DAYS - age
        facts.append(
            f"Refund window: {REFUND_WINDOW_DAYS} days from delivery; delivered {age} days ago, "
            + (
                f"inside the window ({left} days left)"
                if left >= 0
                else "outside the window (defective items: warranty policy)"
            )
        )
        over = [i for i in items if i["unit_price_cents"] >= NO_RETURN_BELOW_CENTS]
        under = [i for i in items if i["unit_price_cents"] < NO_RETURN_BELOW_CENTS]
        if over:
            facts.append(
                "If damaged or defective on arrival: "
                + ", ".join(f"{i['name']} ({money(i['unit_price_cents'])})" for i in over)
                + " (each $50 or more): a return is required before the refund"
            )
        if under:
            facts.append(
                "If damaged or defective on arrival: "
                + ", ".join(f"{i['name']} ({money(i['unit_price_cents'])})" for i in under)
                + " (each under $50): can be refunded without a return"
            )
        facts.append(
            "Warranty from delivery: "
            + "; ".join(
                f"{i['name']} {cls} (until {(delivered + timedelta(days=n)).date().isoformat()})"
                for i in items
                for cls, n in [warranty_of(i["name"])]
            )
        )
    shipped = parse_ts(order["shipped_at"])
    if shipped is not None and order["delivered_at"] is None and order["status"] == "shipped":
        method = str(order["shipping_method"] or "standard").lower()
        expected = add_business_days(shipped.date(), DELIVERY_BUSINESS_DAYS.get(method, 5))
        late = business_days_between(expected, now.date())
        fact = (
            f"Not delivered: shipped {(now.date() - shipped.date()).days} days ago by {method}, expected by "
            f"{expected.isoformat()}; {late} business days past the expected date"
        )
        if late >= LOST_AFTER_BUSINESS_DAYS:
            fact += (
                f" (over {LOST_AFTER_BUSINESS_DAYS}: the customer may choose a free replacement "
                "or a full refund including shipping)"
            )
        facts.append(fact)
    return facts
