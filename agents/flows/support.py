"""The support agent as steps: look up the ids (code), retrieve the policy (code), read the
request (model: closed questions), plan the action (code), draft the reply (model), approve
and act (the existing approval step), report.

Code keeps the model away from what it gets wrong: the customer, order and ticket ids in
the request are looked up by code, and so are the tickets of a looked-up order and the
order of a looked-up ticket; the order lookup works out the refund window, the amounts and
the policy limits (``tools.refund_rules``) and the flow reads them as fields. What the
request *means* — which action it asks for, whether it forbids acting, which status a ticket
should get, which item of a multi-item order a refund is for, why the customer wants the
refund, whether the item is back — the model answers as labelled options and yes/no
questions (``support_questions``). The action then follows from those answers and the
records by the policy in code: a refund or a ticket change runs only when the request
confidently asks for one and does not forbid it, for the amount the records allow, only
for the customer the request is about, and only after approval (``review.high_risk_tools``).
The model writes the reply; the answer then carries the records, the key policy lines and
the actions from their tool results, so it never claims an action, a fact or a source the
records don't show.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.approval import Approval
from agents.flows.common import Resources, add_usage, clip, generate, messages, task_block
from agents.flows.evidence import quote_block, quotes
from agents.flows.reply_checks import cited_only, consistent, stated_only, unclaimed
from agents.flows.researcher import passage_block, query_of, scored_passages, tidy
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.flows.support_questions import (
    ACT_MARGIN,
    REASON_CONFIDENT,
    STATUS_CONFIDENT,
    Reading,
    ask_forbids,
    ask_intent,
    ask_item,
    ask_reason,
    ask_returned,
    ask_status,
)
from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of
from agents.steps import ToolCallRecord
from agents.toolset import run_tool
from tools.actions import ACTING_FOR_FIELD
from tools.context import ToolContext
from tools.customer_records import (
    OrderRecord,
    Record,
    TicketRecord,
    as_state,
    from_state,
    ids_in,
)
from tools.customer_service import customer_record, order_record, requester_of, ticket_record
from tools.knowledge_base import KnowledgeBase
from tools.refund_rules import NO_RETURN_BELOW_CENTS, OrderLine, RefundVerdict, money
from tools.registry import build_tools, is_high_risk

ACTION_NAMES = {"refund": "refund", "escalate": "escalation", "status": "status change"}
"""How a reply or a note names each action the request may ask for."""

POLICY_PASSAGES = 5
REPLY_TOKENS = 170

REPLY_SYSTEM = (
    "You are a customer support agent. From the records and the policy notes, write the "
    "reply to the person who asked, in 2 to 4 sentences. Use the exact ids, dates and "
    "amounts from the records and the policy's exact terms; cite policy notes by number, "
    "like [1]. State the planned action exactly as given; never promise another one."
)


class SupportState(FlowState, total=False):
    ids: dict[str, list[str]]
    records: list[str]
    """The records' text, as the model and the report show them."""
    found: list[dict[str, Any]]
    """The records as data (``tools.customer_records.as_state``), for code to read."""
    customer: str
    """The customer the request is about ('' when it establishes none)."""
    customer_why: str
    """How that customer was established, or why none was."""
    readings: dict[str, dict[str, Any]]
    """The model's answers about the request (``support_questions.Reading``), by question."""
    passages: list[dict[str, str]]
    query: str
    """What the policy quotes are chosen for: the request and the tickets' subjects."""
    plan: str
    """The action code planned (or why none), as the model is told it."""
    reply: str
    pending: list[ToolCallRecord]
    done: list[str]
    """What the actions' tool results said (run, rejected or refused)."""
    taken: list[str]
    """The tools whose action ran."""
    changed: list[str]
    """The records an action that ran changed (their looked-up status is out of date)."""
    notes: list[str]


def request_ids(text: str) -> dict[str, list[str]]:
    return ids_in(text)


def _records(state: SupportState) -> list[Record]:
    return [from_state(r) for r in state.get("found") or []]


def _customer_words(records: list[Record]) -> list[str]:
    """The tickets' subjects and notes: the customer's own account of the problem."""
    words: list[str] = []
    for r in records:
        if isinstance(r, TicketRecord):
            words += [r.subject, *r.notes]
    return words


SECONDARY_SCORE = 0.45
"""A passage found only for a ticket's subject or notes is taken when its BM25 score is at
least this share of the request's best passage's: a customer's own words ("battery
drains") find the rule the request's generic words would bury, but words the policies do
not cover ("crackles at high volume") must not pull in a passage on something else."""


def policy_passages(kb: KnowledgeBase, queries: list[str], k: int) -> list[dict[str, str]]:
    """The top passages for the request (the first query) and for each ticket's subject
    and notes, merged in turns, each query adding its best passage not yet taken."""
    ranked = [scored_passages(kb, query_of(q), k) for q in queries if q.strip()]
    if ranked:
        floor = (ranked[0][0][0] if ranked[0] else 0.0) * SECONDARY_SCORE
        ranked = [ranked[0], *[[h for h in hits if h[0] >= floor] for hits in ranked[1:]]]
    merged: dict[str, dict[str, str]] = {}
    cursors = [0] * len(ranked)
    while len(merged) < k and any(c < len(h) for c, h in zip(cursors, ranked, strict=True)):
        for i, hits in enumerate(ranked):
            while cursors[i] < len(hits) and hits[cursors[i]][1]["citation"] in merged:
                cursors[i] += 1
            if cursors[i] < len(hits) and len(merged) < k:
                merged[hits[cursors[i]][1]["citation"]] = hits[cursors[i]][1]
                cursors[i] += 1
    return list(merged.values())


def _return_first(verdict: RefundVerdict, line: OrderLine | None) -> bool:
    """Whether a damaged or defective item must come back before its refund: the item's own
    price for a partial refund; for the whole order, when any item costs $50 or more."""
    if line is not None:
        return line.unit_cents >= NO_RETURN_BELOW_CENTS
    return bool(verdict.return_first)


def _line_why(verdict: RefundVerdict, line: OrderLine, our_fault: bool) -> str:
    """What a partial refund of one ``line`` item is made of, as the note and reply state it."""
    what = f"partial refund for one {line.name}, {money(line.unit_cents)}"
    if our_fault:
        shipping = (f"plus the original shipping fee {money(verdict.shipping_cents)}"
                    if verdict.shipping_cents else "no shipping fee was paid")
        return f"{what}; {shipping}"
    if verdict.delivered:
        return f"{what}, less the return label (the return is not caused by a defect or our error)"
    return what


class SupportSteps:
    def __init__(self, spec: AgentSpec, resources: Resources) -> None:
        self.spec = spec
        self.res = resources

    def _request(self, state: SupportState) -> str:
        task = state.get("task") or {}
        return f"{task.get('instruction') or ''}\n{state.get('goal') or ''}"

    def _asked(self, state: SupportState) -> str:
        """The request as the model is asked about it: the goal, and the task's own wording
        when the planner rewrote it."""
        task = state.get("task") or {}
        goal = " ".join(str(state.get("goal") or "").split())
        instruction = " ".join(str(task.get("instruction") or "").split())
        if not goal or instruction in goal:
            return instruction or goal
        if goal in instruction:
            return instruction
        return f"{goal} (Task: {instruction})"

    def _order_ids(self, state: SupportState) -> list[str]:
        """The orders a refund may be for: those the request names, else the looked-up ones."""
        return request_ids(self._request(state))["order"] or (state.get("ids") or {}).get("order") or []

    def _refund_order(self, state: SupportState, records: list[Record]) -> OrderRecord | None:
        """The looked-up order a refund would be for: the first of ``_order_ids``."""
        orders = self._order_ids(state)
        found = next((r for r in records if r.id == orders[0]), None) if orders else None
        return found if isinstance(found, OrderRecord) else None

    async def lookup(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Look up every id in the request and what they link to (a ticket's order, an
        order's tickets); establish the customer it is about; retrieve the policy for the
        request and the tickets' words."""
        ctx = self.res.tools(runtime)
        ids = request_ids(self._request(state))
        records: list[str] = []
        found: list[Record] = []
        seen: set[str] = set()
        def customer(c: ToolContext, value: str) -> Record:
            return customer_record(c, value, None)

        fetch: dict[str, Callable[[ToolContext, str], Record]] = {
            "ticket": ticket_record, "order": order_record, "customer": customer}  # fmt: skip

        async def look(kind: str, value: str) -> Record | None:
            seen.add(value)
            try:
                record: Record = await asyncio.to_thread(fetch[kind], ctx, value)
            except Exception as err:  # an unknown id is a fact for the reply, not a crash
                records.append(f"{kind} {value}: {err}")
                return None
            records.append(record.text)
            found.append(record)
            return record

        for kind in ("ticket", "order", "customer"):
            for value in ids[kind]:
                if value in seen:
                    continue
                record = await look(kind, value)
                linked: list[tuple[str, str]] = []
                if isinstance(record, TicketRecord) and record.order_id:
                    linked.append(("order", record.order_id))
                if isinstance(record, OrderRecord):
                    linked += [("ticket", t) for t in record.tickets]
                for link_kind, link in linked:
                    if link not in seen:
                        await look(link_kind, link)
        requester = await asyncio.to_thread(requester_of, ctx, self._request(state))
        task = state.get("task") or {}
        request = str(task.get("instruction") or state.get("goal") or "")
        about = _customer_words(found)
        kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)
        passages = await asyncio.to_thread(policy_passages, kb, [request, *about], POLICY_PASSAGES)
        query = " ".join([request, *about])
        ids = {kind: list(dict.fromkeys([*ids[kind], *(r.id for r in found if r.kind == kind)]))
               for kind in ids}  # fmt: skip
        return {"ids": ids, "records": records, "found": [as_state(r) for r in found],
                "customer": requester.customer or "", "customer_why": requester.why,
                "passages": passages, "query": query}  # fmt: skip

    async def understand(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Ask the model what the request means, one closed question at a time; only the
        questions whose answer can change the action are asked."""
        model = await self.res.model(runtime)
        config = get_config()
        request = self._asked(state)
        records = _records(state)
        readings: dict[str, Reading] = {"intent": await ask_intent(model, request, config)}
        if readings["intent"].choice != "info":
            readings["forbids"] = await ask_forbids(model, request, config)
        if readings["intent"].choice == "status":
            readings["status"] = await ask_status(model, request, config)
        acting = readings["intent"].choice == "refund" and readings.get("forbids") is not None \
            and readings["forbids"].choice == "no"
        order = self._refund_order(state, records)
        if acting and order is not None and order.verdict.blocker is None:
            line = None
            if len(order.verdict.lines) > 1:
                items = [(item.sku, item.name) for item in order.verdict.lines]
                readings["item"] = await ask_item(model, request, items, config)
                line = order.verdict.line(readings["item"].choice)
            readings["reason"] = await ask_reason(model, request, _customer_words(records), config)
            if readings["reason"].choice == "damaged" and _return_first(order.verdict, line):
                readings["returned"] = await ask_returned(model, request, config)
        # The questions' token counts are not returned; ~ a short prompt each, one token out.
        asked = (len(request) // 4 + 60) * len(readings)
        return {"readings": {k: v.as_state() for k, v in readings.items()},
                "usage": add_usage(dict(state), asked, len(readings), len(readings))}  # fmt: skip

    def plan(self, state: SupportState, review: bool) -> tuple[list[ToolCallRecord], str]:
        """The action the request asks for and the records allow, or why there is none."""
        request = self._request(state)
        records = _records(state)
        ids = state.get("ids") or {}
        readings = {k: Reading.from_state(v) for k, v in (state.get("readings") or {}).items()}
        status: Literal["needs_approval", "approved"] = "needs_approval" if review else "approved"
        intent = readings.get("intent") or Reading("info", 0.0, "default")
        if intent.choice not in ACTION_NAMES:  # information only (or a reading it cannot act on)
            return [], "No action: the request asks for information only."
        if not intent.leads(intent.choice, "info", ACT_MARGIN):
            return [], (
                f"No action: it is not clear that the request asks for a "
                f"{ACTION_NAMES.get(intent.choice, intent.choice)} "
                f"(confidence {intent.p:.2f}, information only {intent.of_key('info'):.2f}); "
                "confirm it and ask again."
            )
        forbids = readings.get("forbids") or Reading("yes", 0.0, "default")
        if forbids.choice != "no":
            return [], "No action: the request forbids issuing or changing anything."
        customer = state.get("customer") or ""
        summary = clip(" ".join(self._asked(state).split()), 240)
        by_id = {r.id: r for r in records}

        def not_theirs(record: Record) -> str | None:
            if not customer:
                return (f"{record.kind} {record.id} belongs to customer {record.owner}, and "
                        f"{state.get('customer_why') or 'the request establishes no customer'}")
            if record.owner != customer:
                return (f"{record.kind} {record.id} belongs to customer {record.owner}, not to "
                        f"customer {customer}, whom the request is about")
            return None

        if intent.choice in ("escalate", "status"):
            name = ACTION_NAMES[intent.choice]
            new_status = "escalated"
            if intent.choice == "status":
                wanted = readings.get("status") or Reading("pending", 0.0, "default")
                if wanted.p < STATUS_CONFIDENT:
                    return [], (f"No {name}: it is not clear which status the ticket should get "
                                f"({wanted.choice}, confidence {wanted.p:.2f}); confirm it and "
                                "ask again.")
                new_status = wanted.choice
            tickets = request_ids(request)["ticket"] or ids.get("ticket") or []
            if not tickets:
                return [], f"No {name}: the request names no ticket."
            ticket = by_id.get(tickets[0])
            if not isinstance(ticket, TicketRecord):
                return [], f"No {name}: ticket {tickets[0]} was not found."
            if why := not_theirs(ticket):
                return [], f"No {name}: {why}."
            if ticket.status == new_status:
                return [], f"No {name}: ticket {ticket.id} is already {new_status}."
            checked = "; ".join(r.text.splitlines()[0] for r in records)
            note = clip(f"{new_status.capitalize()} at the request: {summary} "
                        f"Checked: {checked}.", 600)
            call = ToolCallRecord(
                id=intent.choice, tool="update_ticket", status=status,
                thought=(f"Records this action touches: ticket {ticket.id} of customer "
                         f"{ticket.owner}. The request is about customer {customer}."),
                args={"ticket_id": ticket.id, "status": new_status, "note": note,
                      ACTING_FOR_FIELD: customer},
            )  # type: ignore[typeddict-item]  # fmt: skip
            return [call], (f"Set ticket {ticket.id} to {new_status} (from {ticket.status}, "
                            "with a note).")
        orders = self._order_ids(state)
        if not orders:
            return [], "No refund: the request names no order."
        order = by_id.get(orders[0])
        if not isinstance(order, OrderRecord):
            return [], f"No refund: order {orders[0]} was not found."
        if why := not_theirs(order):
            return [], f"No refund: {why}."
        verdict = order.verdict
        item = readings.get("item")
        if item is not None and item.choice == "unclear":
            return [], (f"No refund yet: it is not clear which item of order {order.id} the refund "
                        "is for; confirm the item (or that the whole order is meant).")
        line = verdict.line(item.choice) if item is not None else None
        if verdict.blocker is not None or (line is None and verdict.amount_cents(True) is None):
            return [], f"No refund: {verdict.why}."
        reason = readings.get("reason") or Reading("other", 0.0, "default")
        if reason.p < REASON_CONFIDENT:
            return [], (
                "No refund yet: it is not clear why the customer wants it (a defect or damage, "
                "our error, or another reason), which decides the amount and whether the item "
                "must come back first; confirm the reason."
            )
        returned = readings.get("returned")
        if reason.choice == "damaged" and _return_first(verdict, line) and not (
            returned is not None and returned.sure("yes")
        ):
            return [], (
                "No refund yet: the item costs $50 or more, so the damaged-or-defective-on-"
                "arrival rule requires its return before the refund is issued (return "
                "shipping is free for damaged items)."
            )
        our_fault = reason.choice in ("damaged", "our_error")
        if line is not None:
            cents = verdict.item_amount_cents(line.sku, our_fault)
            if cents is None:
                return [], (f"No refund: one {line.name} ({money(line.unit_cents)}) is not "
                            "refundable by an agent (above the $500 limit or nothing left after "
                            "the return label).")
            why = _line_why(verdict, line, our_fault)
        else:
            whole = verdict.amount_cents(our_fault)
            if whole is None:  # unreachable: checked above; kept for the type checker
                return [], f"No refund: {verdict.why}."
            cents = whole
            why = (verdict.why if our_fault or verdict.label_refund_cents is None
                   else "the return is not caused by a defect or our error: return label deducted")
        call = ToolCallRecord(
            id="refund", tool="issue_refund", status=status,
            thought=(f"Records this action touches: order {order.id} of customer {order.owner}. "
                     f"The request is about customer {customer}. {money(cents)} is what the "
                     f"records allow ({why})."),
            args={"order_id": order.id, "amount": round(cents / 100, 2),
                  "reason": clip(f"{summary} ({why})", 200), ACTING_FOR_FIELD: customer},
        )  # type: ignore[typeddict-item]  # fmt: skip
        return [call], f"Refund {money(cents)} on order {order.id} ({why})."

    async def draft(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Plan the action (code), then one model call drafts the reply around it."""
        review = context_of(runtime).settings.review.high_risk_tools
        pending, plan = self.plan(state, review)
        told = (  # the model answers the question; it is told what the system will do
            f"Action the system takes after a reviewer approves it (not you): {plan}"
            if pending
            else f"No action is taken ({plan}) Answer the question from the records and the "
            "policy notes."
        )
        records = (
            "\n\n".join(state.get("records") or []) or "(no customer, order or ticket id given)"
        )
        policy = passage_block(state.get("passages") or [], state.get("query") or None)
        user = (
            f"Records:\n{clip(records, 2500)}\n\nPolicy notes:\n{policy}\n\n"
            f"{task_block(dict(state))}\n\n{told}\n\nReply:"
        )
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(REPLY_SYSTEM, user), get_config(), max_tokens=REPLY_TOKENS,
            stop=["\nRecords:", "\n\n\n"],
        )  # fmt: skip
        return {
            "reply": tidy(text, max_sentences=5),
            "plan": plan,
            "pending": pending,
            "usage": add_usage(dict(state), n_in, n_out),
            "steps": 1,
        }

    async def act(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Run the approved actions once (under their idempotency keys); a rejection is
        reported, never run; a failure is a result, never an exception."""
        ctx = self.res.tools(runtime)
        tools = {t.name: t for t in build_tools(["issue_refund", "update_ticket"], ctx)}
        config = get_config()
        done: list[str] = []
        taken: list[str] = []
        changed: list[str] = []
        for call in state.get("pending") or []:
            if call.get("status") == "rejected":
                done.append(
                    f"{call['tool']} {call['args']} was rejected by a reviewer and did not run"
                )
                continue
            if call.get("status") == "invalid":
                done.append(f"{call['tool']} not run: {call.get('feedback') or 'invalid call'}")
                continue
            if call.get("status") != "approved" and is_high_risk(tools[call["tool"]]):
                continue
            text, ok = await run_tool(tools[call["tool"]], call, config)
            if ok:
                done.append(text)
                taken.append(call["tool"])
                changed += [str(v) for k, v in call["args"].items() if k in ("order_id", "ticket_id")]
            else:
                done.append(f"{call['tool']} refused: {text}")
        return {"done": done, "taken": taken, "changed": changed, "pending": []}

    async def report(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The reply, then what code knows: actions from their results, the records, the
        key policy lines, the sources."""
        passages = state.get("passages") or []
        records = state.get("records") or []
        found = _records(state)
        reply, _ = unclaimed(state.get("reply") or "", set(state.get("taken") or []))
        reply, _ = consistent(reply, found)
        reply, _ = stated_only(reply, found, [p.get("text", "") for p in passages],
                               [state.get("plan") or "", *(state.get("done") or [])],
                               changed=state.get("changed") or [])
        reply = cited_only(reply, {p["path"] for p in passages})
        if not reply and not records:
            return {"output": "", "error": "; ".join(state.get("notes") or ["no reply"])}
        text = re.sub(
            r"\s*\[(\d)\]",
            lambda m: (
                f" [{passages[int(m.group(1)) - 1]['path']}]"
                if 0 < int(m.group(1)) <= len(passages)
                else ""
            ),
            reply,
        )
        done = state.get("done") or []
        lines = [text, ""] if text else []
        lines.append(
            "Actions taken: "
            + ("; ".join(done) if done else f"none. {state.get('plan') or ''}".strip())
        )
        if records:
            lines += ["", "Records looked up:"]
            for record in records:
                first, *rest = record.splitlines()
                lines += [f"- {first}", *[f"  {r}" for r in rest]]
        quoted = quotes(passages, state.get("query") or "")
        if quoted:
            lines += ["", quote_block(quoted, "Policy (from the sources):")]
        citations = list(dict.fromkeys(c for _, c in quoted))
        if citations:
            lines += ["", "Sources:", *[f"- {c}" for c in citations]]
        return {"output": "\n".join(lines), "citations": citations, "error": None}

    def after_draft(self, state: SupportState) -> Literal["approve", "act", "report"]:
        pending = state.get("pending") or []
        if any(c.get("status") == "needs_approval" for c in pending):
            return "approve"
        return "act" if pending else "report"


def build_support(
    name: str, resources: Resources, spec: AgentSpec | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled support flow; its approval node is the tool loop's."""
    spec = spec or AgentSpec(
        name="support", description="support", prompt="support", model_role=resources.role
    )
    steps = SupportSteps(spec, resources)
    builder = StateGraph(
        SupportState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("lookup", steps.lookup)
    builder.add_node("understand", steps.understand)
    builder.add_node("draft", steps.draft)
    builder.add_node("approve", Approval(spec).approve)  # type: ignore[arg-type]
    builder.add_node("act", steps.act)
    builder.add_node("report", steps.report)
    builder.add_edge(START, "lookup")
    builder.add_edge("lookup", "understand")
    builder.add_edge("understand", "draft")
    builder.add_conditional_edges("draft", steps.after_draft)
    builder.add_edge("approve", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", "__end__")
    return builder.compile(name=name)
