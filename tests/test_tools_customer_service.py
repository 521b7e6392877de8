"""Customer-service tools on a fresh copy of the sample database."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from pydantic import ValidationError

from agents.toolset import action_key, for_requester, run_tool
from tools.context import ToolContext
from tools.customer_service import (
    IssueRefundArgs,
    UpdateTicketArgs,
    _order,
    issue_refund_tool,
    lookup_customer_tool,
    lookup_order_tool,
    lookup_ticket_tool,
    order_record,
    refund_problem,
    requester_of,
    ticket_problem,
    ticket_record,
    update_ticket_tool,
)
from tools.refund_rules import add_business_days, business_days_between, warranty_of
from tools.registry import is_high_risk


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path,
        kb_index=tmp_path / "i.sqlite",
        customer_db=tmp_path / "data" / "customer_service.sqlite",
    )


def refunds(ctx: ToolContext, order_id: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(ctx.customer_db)
    try:
        return conn.execute(
            "SELECT amount_cents, reason FROM refunds WHERE order_id=? ORDER BY id", (order_id,)
        ).fetchall()
    finally:
        conn.close()


async def test_sample_db_built_on_first_use(ctx: ToolContext) -> None:
    assert not ctx.customer_db.exists()
    out = await lookup_customer_tool(ctx).ainvoke({"customer_id": "C001"})
    assert ctx.customer_db.exists()
    conn = sqlite3.connect(ctx.customer_db)
    counts = [
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("customers", "orders", "order_items", "tickets", "refunds")
    ]
    conn.close()
    assert counts[0] == 10 and counts[1] == 20 and counts[3] == 10 and counts[4] == 2
    assert out.startswith("Customer C001: Maria Lopez <maria.lopez@example.com>")
    assert "O1001 delivered $129.00" in out and "T501 open/normal" in out


async def test_lookup_customer_by_email_and_errors(ctx: ToolContext) -> None:
    tool = lookup_customer_tool(ctx)
    out = await tool.ainvoke({"email": " James.Chen@Example.com "})
    assert out.startswith("Customer C002: James Chen") and "tier vip" in out
    assert await tool.ainvoke({"customer_id": "c999"}) == "Error: no customer with id 'C999'"
    assert "give customer_id" in await tool.ainvoke({})
    assert "no customer with email" in await tool.ainvoke({"email": "nobody@example.com"})


async def test_lookup_order(ctx: ToolContext) -> None:
    tool = lookup_order_tool(ctx)
    out = await tool.ainvoke({"order_id": "#o1003"})
    assert out.startswith("Order O1003 for C002 (James Chen): status delivered, express shipping")
    assert "1 x Tablet 11 Pro (BL-TAB11P) @ $649.00" in out and "total paid $661.00" in out
    assert "up to $500.00 (the $661.00 left is above the $500 agent limit: a full refund " in out
    assert "inside the window (22 days left)" in out  # the policy window, worked out
    out = await tool.ainvoke({"order_id": "1012"})
    assert "Refund #1: $49.00" in out and "already has a refund" in out
    assert "outside the 30-day refund window" in await tool.ainvoke({"order_id": "O1002"})
    assert "has not shipped" in await tool.ainvoke({"order_id": "O1005"})
    assert await tool.ainvoke({"order_id": "O9999"}) == "Error: no order with id 'O9999'"


async def test_lookup_ticket(ctx: ToolContext) -> None:
    tool = lookup_ticket_tool(ctx)
    out = await tool.ainvoke({"ticket_id": "T503"})
    assert out.startswith('Ticket T503: "Package has not arrived, tracking unchanged"')
    assert "Status open, priority high" in out and "Carrier trace opened" in out
    assert await tool.ainvoke({"ticket_id": "T1"}) == "Error: no ticket with id 'T1'"


async def test_refund_recorded(ctx: ToolContext) -> None:
    tool = issue_refund_tool(ctx)
    out = await tool.ainvoke({"order_id": "O1001", "amount": 20, "reason": "Crackling ear cup"})
    assert out.startswith("Refund #3 of $20.00 issued for order O1001 (customer C001)")
    assert refunds(ctx, "O1001") == [(2000, "Crackling ear cup")]
    order = await lookup_order_tool(ctx).ainvoke({"order_id": "O1001"})
    assert "refunded $20.00" in order


async def test_refund_to_the_cent(ctx: ToolContext) -> None:
    out = await issue_refund_tool(ctx).ainvoke(
        {"order_id": "O1015", "amount": 71.0, "reason": "Case arrived cracked"}
    )
    assert "Refunded so far: $71.00 of $71.00" in out


@pytest.mark.parametrize(
    "order_id, amount, expected",
    [
        ("O1001", 129.01, "exceeds what is left to refund on O1001 ($129.00 of $129.00 paid)"),
        ("O1003", 600, "above the agent limit of $500.00"),
        ("O1002", 10, "outside the 30-day refund window"),
        ("O1005", 10, "has not shipped (processing)"),
        ("O1007", 10, "was cancelled"),
        ("O1012", 5.99, "already has a refund"),
        ("O9999", 10, "no order with id 'O9999'"),
    ],
)
async def test_refund_rejected(
    ctx: ToolContext, order_id: str, amount: float, expected: str
) -> None:
    out = await issue_refund_tool(ctx).ainvoke(
        {"order_id": order_id, "amount": amount, "reason": "customer request"}
    )
    assert out.startswith("Error:") and expected in out, out
    assert len(refunds(ctx, order_id)) == (1 if order_id == "O1012" else 0)


async def test_refund_argument_validation(ctx: ToolContext) -> None:
    tool = issue_refund_tool(ctx)
    out = await tool.ainvoke({"order_id": "O1001", "amount": -5, "reason": "x"})
    assert out.startswith("Error: invalid arguments for issue_refund") and "amount" in out
    msg = await tool.ainvoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": "issue_refund",
            "args": {"order_id": "O1001", "amount": 999, "reason": "too much"},
        }
    )
    assert isinstance(msg, ToolMessage) and msg.status == "error" and "exceeds" in str(msg.content)


async def test_update_ticket(ctx: ToolContext) -> None:
    tool = update_ticket_tool(ctx)
    out = await tool.ainvoke({"ticket_id": "T503", "status": "escalated", "note": "Lost package"})
    assert out == "Ticket T503 updated: status open -> escalated; note added."
    ticket = await lookup_ticket_tool(ctx).ainvoke({"ticket_id": "T503"})
    assert "Status escalated" in ticket and "agent: Lost package" in ticket
    assert "is closed (final)" in await tool.ainvoke(
        {"ticket_id": "T510", "status": "open", "note": "reopen"}
    )
    assert "escalated; the team that owns it" in await tool.ainvoke(
        {"ticket_id": "T506", "status": "resolved", "note": "done"}
    )
    assert "no ticket with id 'T999'" in await tool.ainvoke(
        {"ticket_id": "T999", "status": "open", "note": "x"}
    )
    assert "invalid arguments" in await tool.ainvoke(
        {"ticket_id": "T501", "status": "deleted", "note": "x"}
    )


def test_risk_metadata(ctx: ToolContext) -> None:
    assert is_high_risk(issue_refund_tool(ctx)) and is_high_risk(update_ticket_tool(ctx))
    assert not is_high_risk(lookup_order_tool(ctx))


async def test_configured_db_is_not_seeded(tmp_path: Path) -> None:
    ctx = ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path,
        kb_index=tmp_path / "i.sqlite",
        customer_db=tmp_path / "prod.sqlite",
        seed_customer_db=False,
    )
    out = await lookup_order_tool(ctx).ainvoke({"order_id": "O1001"})
    assert "does not exist" in out and not (tmp_path / "prod.sqlite").exists()


# -- the policy rules worked out by code (tools.refund_rules) ---------------------------------


def test_business_days_and_warranty_classes() -> None:
    friday = date(2026, 11, 27)
    assert add_business_days(friday, 2) == date(2026, 12, 1)  # Mon, Tue
    assert business_days_between(friday, date(2026, 12, 4)) == 5
    assert business_days_between(date(2026, 12, 4), friday) == 0
    assert warranty_of("Tablet 11 Pro")[1] == 730
    assert warranty_of("USB-C Cable 2m")[1] == 182
    assert warranty_of("Refurbished Laptop 14")[1] == 90
    assert warranty_of("Laptop 14") == ("standard product, 1 year", 365)
    assert warranty_of("Productive Speaker")[1] == 365  # "pro" is a word, not a prefix


async def test_order_lookup_states_the_worked_out_rules(ctx: ToolContext) -> None:
    tool = lookup_order_tool(ctx)
    change_of_mind = await tool.ainvoke({"order_id": "O1008"})  # $59.00, delivered 2 days ago
    assert "the $6.95 return label is deducted, refund $52.05" in change_of_mind
    assert "Earbuds Lite ($59.00) (each $50 or more): a return is required" in change_of_mind
    second = await tool.ainvoke({"order_id": "O1019"})  # already one refund of $59.00
    assert "left to refund $129.00" in second and "Refund by agent: not possible" in second
    assert "return label" not in second  # no refund possible, so no deduction either
    lost = await tool.ainvoke({"order_id": "O1014"})  # express, shipped 19 days ago
    assert "Not delivered: shipped 19 days ago by express" in lost
    assert "free replacement or a full refund including shipping" in lost
    assert "return label" not in lost  # nothing was delivered to return


# -- amounts: validated before any key is computed (finding: 1e400 crashed the task) ---------------


@pytest.mark.parametrize(
    "amount, expected",
    [(float("inf"), "finite"), (1e400, "finite"), (float("nan"), "finite"), (12.345, "two decimals"),
     (0, "greater than 0"), (-5, "greater than 0"), (5e7, "above $1,000,000.00")],
)
async def test_refund_amount_is_finite_positive_whole_cents(
    ctx: ToolContext, amount: float, expected: str
) -> None:
    out = await issue_refund_tool(ctx).ainvoke({"order_id": "O1001", "amount": amount, "reason": "x y"})
    assert out.startswith("Error: invalid arguments for issue_refund") and expected in out, out
    with pytest.raises(ValidationError):
        IssueRefundArgs(order_id="O1001", amount=amount, reason="x y")
    assert not ctx.customer_db.exists()  # refused before the database was even opened


async def test_a_bad_amount_is_a_failed_call_not_a_crash(ctx: ToolContext) -> None:
    """The agent layer computes the idempotency key from the amount: an infinite amount
    raised OverflowError there, outside the tool, and the task went to another agent."""
    tool = issue_refund_tool(ctx)
    call = {"id": "c1", "tool": "issue_refund", "thought": "", "status": "approved",
            "args": {"order_id": "O1001", "amount": 1e400, "reason": "arrived broken"}}  # fmt: skip
    text, ok = await run_tool(tool, call, {"metadata": {"task_id": "t1"}})  # type: ignore[arg-type]
    assert not ok and "invalid arguments for issue_refund" in text and "finite" in text
    assert action_key(tool, call["args"], None) is None  # no key from arguments the schema refuses
    assert not ctx.customer_db.exists()


# -- authorization: an action runs only for the customer the request is about ----------------------


async def test_actions_refuse_another_customers_records(ctx: ToolContext) -> None:
    """Finding: a request from C001 refunded C002's order O1003 and closed C002's ticket."""
    refund = issue_refund_tool(ctx)
    out = await refund.ainvoke({"order_id": "O1003", "amount": 12.0, "reason": "cable",
                                "acting_for": "C001"})  # fmt: skip
    assert out.startswith("Error: refund not issued: order O1003 belongs to customer C002, "
                          "not to customer C001")  # fmt: skip
    ticket = update_ticket_tool(ctx)
    out = await ticket.ainvoke({"ticket_id": "T502", "status": "closed", "note": "done",
                                "acting_for": "C001"})  # fmt: skip
    assert "ticket T502 belongs to customer C002, not to customer C001" in out
    out = await refund.ainvoke({"order_id": "O1003", "amount": 12.0, "reason": "cable",
                                "acting_for": ""})  # fmt: skip
    assert "this request establishes no single customer" in out
    assert refunds(ctx, "O1003") == []
    # checked before a reviewer is asked, too
    assert "belongs to customer C002" in str(refund_problem(ctx, IssueRefundArgs(
        order_id="O1003", amount=12.0, reason="cable", acting_for="C001")))
    assert "belongs to customer C002" in str(ticket_problem(ctx, UpdateTicketArgs(
        ticket_id="T502", status="closed", note="done", acting_for="C001")))
    # its owner's request runs
    out = await refund.ainvoke({"order_id": "O1003", "amount": 12.0, "reason": "cable",
                                "acting_for": "C002"})  # fmt: skip
    assert "Refund #" in out and refunds(ctx, "O1003") == [(1200, "cable")]


def test_the_requester_is_established_by_code(ctx: ToolContext) -> None:
    assert requester_of(ctx, "I am C001; refund O1003").customer == "C001"
    assert requester_of(ctx, "refund O1003 please (ticket T502)").customer == "C002"
    several = requester_of(ctx, "refund O1003 and O1001")
    assert several.customer is None and "several customers (O1003 of C002, O1001 of C001)" in several.why
    assert requester_of(ctx, "C001 and C002 share a flat").customer is None
    assert requester_of(ctx, "hello").customer is None


async def test_the_agent_layer_binds_actions_to_the_requester(ctx: ToolContext) -> None:
    tools = {t.name: t for t in [issue_refund_tool(ctx), lookup_order_tool(ctx)]}
    calls = [
        {"id": "a", "tool": "lookup_order", "thought": "", "args": {"order_id": "O1003"}},
        {"id": "b", "tool": "issue_refund", "thought": "refund it",
         "args": {"order_id": "O1003", "amount": 12.0, "reason": "x y", "acting_for": "C002"}},
    ]  # fmt: skip
    out = await for_requester(calls, tools, ctx, "Customer C001 wants O1003 refunded")  # type: ignore[arg-type]
    assert out[0] == calls[0]  # a lookup acts for nobody
    assert out[1]["args"]["acting_for"] == "C001"  # the model's value is replaced
    assert out[1]["thought"] == ("refund it Records this action touches: order O1003 of customer "
                                 "C002. The request is about customer C001.")  # fmt: skip
    text, ok = await run_tool(tools["issue_refund"], out[1], {})
    assert not ok and "belongs to customer C002, not to customer C001" in text
    unbound = {**calls[1], "args": {k: v for k, v in calls[1]["args"].items() if k != "acting_for"}}
    text, ok = await run_tool(tools["issue_refund"], unbound, {})  # type: ignore[arg-type]
    assert not ok and "establishes no single customer" in text  # an agent's call is for someone


# -- facts as data ----------------------------------------------------------------------------------


def test_order_record_carries_the_verdict_as_fields(ctx: ToolContext) -> None:
    over = order_record(ctx, "O1003")
    assert over.owner == "C002" and over.status == "delivered" and over.tickets == ("T502",)
    assert over.verdict.over_agent_limit and over.verdict.approver == "team lead"
    assert over.verdict.amount_cents(True) is None and over.verdict.eligible is None
    assert over.tracking == "1Z999AA10000003" and 66100 in over.amounts
    assert over.text == _order(ctx, "O1003")  # the model reads the same facts as text
    small = order_record(ctx, "O1008").verdict
    assert (small.amount_cents(False), small.amount_cents(True)) == (5205, 5900)
    assert small.return_first == ("Earbuds Lite",) and small.approver == "reviewer"
    late = order_record(ctx, "O1002").verdict
    assert late.blocker is not None and late.blocker.kind == "outside_window" and late.eligible is False
    assert late.approver is None
    again = order_record(ctx, "O1012").verdict
    assert again.blocker is not None and again.blocker.kind == "second_refund"
    assert again.approver == "team lead"
    ticket = ticket_record(ctx, "T503")
    assert (ticket.owner, ticket.order_id, ticket.status) == ("C007", "O1014", "open")
    assert ticket.notes[-1] == "Carrier trace opened; no movement since dispatch."
