"""The support agent as steps: look up the ids (code), retrieve the policy (code), plan the
action (code), draft the reply (model), approve and act (the existing approval step), report.

Code keeps the model away from what it gets wrong: the customer, order and ticket ids in
the request are looked up by code, and so are the tickets of a looked-up order and the
order of a looked-up ticket; the order lookup states the refund window, the amounts and
the policy limits already worked out (``tools.refund_rules``). The action follows from
the request and those records, not from the model: a refund or an escalation runs only
when the request asks for one and does not forbid it, for the amount the records allow,
and only after approval (``review.high_risk_tools``). The model writes the reply; the
answer then carries the records, the key policy lines and the actions from their tool
results, so it never claims an action or a source the records don't show.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.approval import Approval
from agents.flows.common import Resources, add_usage, clip, generate, messages, task_block
from agents.flows.evidence import quote_block, quotes
from agents.flows.reply_checks import cited_only, consistent, unclaimed
from agents.flows.researcher import passage_block, query_of, scored_passages, tidy
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.registry import AgentSpec
from agents.run_context import RunContext, context_of
from agents.steps import ToolCallRecord
from tools.knowledge_base import KnowledgeBase
from tools.registry import build_tools, is_high_risk

IDS = {
    "customer": re.compile(r"\bC\d{3}\b"),
    "order": re.compile(r"\bO\d{4}\b"),
    "ticket": re.compile(r"\bT\d{3}\b"),
}
FORBIDS = re.compile(
    r"\b(do not|don't|never|without) (issue|refund|change|update|escalate)|only check|"
    r"not issue|do nothing", re.IGNORECASE
)  # fmt: skip
ASKS_REFUND = re.compile(r"^(?=.*\brefund)(?=.*\b(issue|process|give|handle)\b)", re.I | re.S)
ASKS_ESCALATE = re.compile(r"(^|[.!?:;]\s+|\b(and|please|then)\s+)escalate\b", re.IGNORECASE)
OUR_FAULT = re.compile(
    r"\b(defect\w*|damag\w*|broken|crack\w*|dead|faulty|not working|doesn't work|"
    r"wrong item|missing|lost|never arrived|has not arrived|hasn't arrived)\b",
    re.IGNORECASE,
)
"""Words saying a return is caused by a defect, damage or our error (no return label)."""
DAMAGED = re.compile(
    r"\b(damag\w*|broken|crack\w*|dead|faulty|defect\w*|not working|doesn't work)\b", re.I
)
"""Words saying the item itself is damaged or defective (not lost: a lost package cannot be
returned)."""
RETURNED = re.compile(
    r"\b(?:has|have|was|were) (?:been |now |already )*returned\b|\breturn (?:has )?(?:arrived|come back)\b|"
    r"\b(?:received|got) (?:the|their|his|her) (?:return|item back)\b",
    re.IGNORECASE,
)
_RETURN_FIRST = re.compile(r"\(each \$50 or more\): a return is required before the refund")
_NO_RETURN = re.compile(r"\(each under \$50\): can be refunded without a return")
_CAP = re.compile(r"Refund by agent: up to \$([\d,]+\.\d\d)")
_OVER_LIMIT = re.compile(r"above the \$500 agent limit")
_LABEL = re.compile(r"return label is deducted, refund \$([\d,]+\.\d\d)")
_LINKED_TICKETS = re.compile(r"^Tickets: (.*)$", re.MULTILINE)
_SUBJECT = re.compile(r'^Ticket T\d{3}: "(.*)"$', re.MULTILINE)
_NOTE = re.compile(r"^- \S+ \S+ \w+: (.*)$", re.MULTILINE)
"""A ticket note in a ticket record (the customer's words or an agent's)."""
_LINKED_ORDER = re.compile(r"; order (O\d{4})\b")
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
    notes: list[str]


def request_ids(text: str) -> dict[str, list[str]]:
    return {kind: list(dict.fromkeys(rx.findall(text))) for kind, rx in IDS.items()}


def _dollars(rx: re.Pattern[str], records: list[str]) -> float | None:
    for record in records:
        if m := rx.search(record):
            return float(m.group(1).replace(",", ""))
    return None


def refund_cap(records: list[str]) -> float | None:
    return _dollars(_CAP, records)


def refund_amount(records: list[str], our_fault: bool) -> tuple[float | None, str]:
    """The refund the records allow, or None and why not (the policy's rules as the order
    lookup worked them out: the cap, the $500 limit, the return label)."""
    cap = refund_cap(records)
    if cap is None:
        return None, "the order lookup allows no refund by an agent"
    if any(_OVER_LIMIT.search(r) for r in records):
        return None, (
            "a full refund is above the $500 agent limit and needs a team lead's approval "
            "(escalate the ticket)"
        )
    if not our_fault and (label := _dollars(_LABEL, records)) is not None:
        return label, "the return is not caused by a defect or our error: return label deducted"
    return cap, "full amount left on the order"


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


class SupportSteps:
    def __init__(self, spec: AgentSpec, resources: Resources) -> None:
        self.spec = spec
        self.res = resources

    def _request(self, state: SupportState) -> str:
        task = state.get("task") or {}
        return f"{task.get('instruction') or ''}\n{state.get('goal') or ''}"

    async def lookup(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Look up every id in the request and what they link to (a ticket's order, an
        order's tickets); retrieve the policy for the request and the tickets' subjects."""
        ctx = self.res.tools(runtime)
        tools = {
            t.name: t
            for t in build_tools(["lookup_customer", "lookup_order", "lookup_ticket"], ctx)
        }
        ids = request_ids(self._request(state))
        records: list[str] = []
        seen: set[str] = set()

        async def look(kind: str, value: str) -> str:
            tool, arg = {"ticket": ("lookup_ticket", "ticket_id"),
                         "order": ("lookup_order", "order_id"),
                         "customer": ("lookup_customer", "customer_id")}[kind]  # fmt: skip
            seen.add(value)
            try:
                record = str(await tools[tool].ainvoke({arg: value}))
            except Exception as err:  # an unknown id is a fact for the reply, not a crash
                record = f"{kind} {value}: {err}"
            records.append(record)
            return record

        for kind in ("ticket", "order", "customer"):
            for value in ids[kind]:
                if value in seen:
                    continue
                record = await look(kind, value)
                linked = [("order", m) for m in _LINKED_ORDER.findall(record)]
                for line in _LINKED_TICKETS.findall(record):
                    linked += [("ticket", t) for t in IDS["ticket"].findall(line)]
                for link_kind, link in linked:
                    if link not in seen:
                        await look(link_kind, link)
        joined = "\n".join(records)
        task = state.get("task") or {}
        request = str(task.get("instruction") or state.get("goal") or "")
        about = _SUBJECT.findall(joined) + _NOTE.findall(joined)
        kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)
        passages = await asyncio.to_thread(policy_passages, kb, [request, *about], POLICY_PASSAGES)
        query = " ".join([request, *about])
        ids = request_ids("\n".join([self._request(state), *records]))
        return {"ids": ids, "records": records, "passages": passages, "query": query}

    def plan(self, state: SupportState, review: bool) -> tuple[list[ToolCallRecord], str]:
        """The action the request asks for and the records allow, or why there is none."""
        request = self._request(state)
        records = state.get("records") or []
        ids = state.get("ids") or {}
        status: Literal["needs_approval", "approved"] = "needs_approval" if review else "approved"
        wants_refund = bool(ASKS_REFUND.search(request))
        wants_escalation = bool(ASKS_ESCALATE.search(request))
        if not (wants_refund or wants_escalation):
            return [], "No action: the request asks for information only."
        if FORBIDS.search(request):
            return [], "No action: the request forbids issuing or changing anything."
        summary = clip(" ".join(request.split()), 240)
        if wants_escalation:
            tickets = request_ids(request)["ticket"] or ids.get("ticket") or []
            if not tickets:
                return [], "No escalation: the request names no ticket."
            checked = "; ".join(r.splitlines()[0] for r in records)
            note = clip(f"Escalated at the request: {summary} Checked: {checked}.", 600)
            call = ToolCallRecord(
                id="escalate", tool="update_ticket", thought="", status=status,
                args={"ticket_id": tickets[0], "status": "escalated", "note": note},
            )  # type: ignore[typeddict-item]  # fmt: skip
            return [call], f"Escalate ticket {tickets[0]} (status escalated, with a note)."
        orders = request_ids(request)["order"] or ids.get("order") or []
        if not orders:
            return [], "No refund: the request names no order."
        joined = "\n".join(records)
        subjects = _SUBJECT.findall(joined)
        said = "\n".join([request, *subjects])
        our_fault = bool(OUR_FAULT.search(said))
        if (
            DAMAGED.search(said) and _RETURN_FIRST.search(joined) and not _NO_RETURN.search(joined)
            and not RETURNED.search(request)
        ):  # fmt: skip
            return [], (
                "No refund yet: the item costs $50 or more, so the damaged-or-defective-on-"
                "arrival rule requires its return before the refund is issued (return "
                "shipping is free for damaged items)."
            )
        amount, why = refund_amount(records, our_fault)
        if amount is None:
            return [], f"No refund: {why}."
        call = ToolCallRecord(
            id="refund", tool="issue_refund", thought="", status=status,
            args={"order_id": orders[0], "amount": round(amount, 2),
                  "reason": clip(f"{summary} ({why})", 200)},
        )  # type: ignore[typeddict-item]  # fmt: skip
        return [call], f"Refund ${amount:,.2f} on order {orders[0]} ({why})."

    async def draft(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Plan the action (code), then one model call drafts the reply around it."""
        review = context_of(runtime).settings.review.high_risk_tools
        pending, plan = self.plan(state, review)
        told = (  # the model answers the question; it is told what the system will do
            f"Action the system takes after a reviewer approves it (not you): {plan}"
            if pending
            else "No action is taken. Answer the question from the records and the policy notes."
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
        """Run the approved actions once; a rejection is reported, never run."""
        ctx = self.res.tools(runtime)
        tools = {t.name: t for t in build_tools(["issue_refund", "update_ticket"], ctx)}
        done: list[str] = []
        taken: list[str] = []
        for call in state.get("pending") or []:
            if call.get("status") == "rejected":
                done.append(
                    f"{call['tool']} {call['args']} was rejected by a reviewer and did not run"
                )
                continue
            if call.get("status") != "approved" and is_high_risk(tools[call["tool"]]):
                continue
            try:
                done.append(str(await tools[call["tool"]].ainvoke(call["args"])))
                taken.append(call["tool"])
            except Exception as err:
                done.append(f"{call['tool']} refused: {err}")
        return {"done": done, "taken": taken, "pending": []}

    async def report(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The reply, then what code knows: actions from their results, the records, the
        key policy lines, the sources."""
        passages = state.get("passages") or []
        records = state.get("records") or []
        reply, _ = unclaimed(state.get("reply") or "", set(state.get("taken") or []))
        reply, _ = consistent(reply, records)
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
    builder.add_node("draft", steps.draft)
    builder.add_node("approve", Approval(spec).approve)  # type: ignore[arg-type]
    builder.add_node("act", steps.act)
    builder.add_node("report", steps.report)
    builder.add_edge(START, "lookup")
    builder.add_edge("lookup", "draft")
    builder.add_conditional_edges("draft", steps.after_draft)
    builder.add_edge("approve", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", "__end__")
    return builder.compile(name=name)
