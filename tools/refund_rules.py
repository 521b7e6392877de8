"""The refund and shipping rules of the sample policies, computed by code for an order.

They mirror ``refund-policy.md``, ``shipping-policy.md`` and ``escalation-policy.md``: a
30-day window from delivery, at most what is left to refund, at most $500 and one refund
per order without a team lead, a $6.95 return label deducted when the return is not our
fault, no return needed for damaged items under $50, and the lost-package rule (10
business days past the expected delivery). A small model gets dates and amounts wrong;
the order lookup states them already worked out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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


def refund_blocker(
    order: Row, refunded: int, refund_count: int, now: datetime
) -> str | None:
    """Why no refund can be issued on ``order`` by an agent now, or None if it can."""
    status = order["status"]
    if status in ("pending", "processing"):
        return f"order {order['id']} has not shipped ({status}); cancel it instead of refunding"
    if status == "cancelled":
        return f"order {order['id']} was cancelled; the payment was already released"
    if refunded >= order["total_cents"]:
        return f"order {order['id']} is already fully refunded ({money(refunded)})"
    if refund_count >= 1:
        return (
            f"order {order['id']} already has a refund; a second refund needs a team lead "
            "(escalate the ticket)"
        )
    age = days_since(order["delivered_at"], now)
    if age is not None and age > REFUND_WINDOW_DAYS:
        return (
            f"order {order['id']} was delivered {age} days ago, outside the "
            f"{REFUND_WINDOW_DAYS}-day refund window (use the warranty policy or escalate)"
        )
    return None


def refund_lines(order: Row, refunded: int, blocker: str | None) -> list[str]:
    """What an agent may refund: the cap, and the cap when the return label is deducted."""
    if blocker:
        return [f"Refund by agent: not possible — {blocker}"]
    remaining = order["total_cents"] - refunded
    cap = min(remaining, AGENT_REFUND_LIMIT_CENTS)
    lines = [
        f"Refund by agent: up to {money(cap)}"
        + (
            f" (the {money(remaining)} left is above the $500 agent limit: a full refund "
            "needs a team lead's approval)"
            if remaining > AGENT_REFUND_LIMIT_CENTS
            else ""
        )
    ]
    if order["delivered_at"] and RETURN_LABEL_CENTS < remaining <= AGENT_REFUND_LIMIT_CENTS:
        lines.append(
            f"Return not caused by a defect, damage or our error: the {money(RETURN_LABEL_CENTS)} "
            f"return label is deducted, refund {money(remaining - RETURN_LABEL_CENTS)}"
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
