"""The support agent as steps: look up the ids (code), retrieve the policy (code), decide and
draft (one constrained model call), approve and act (the existing approval step), report.

Code keeps the model away from what it gets wrong: the customer, order and ticket ids in
the request are looked up by code; the refund amount is capped by what the order lookup
allows; an action runs only when the request asks for one and does not forbid it, and only
after approval (``review.high_risk_tools``). The answer lists the actions from their tool
results, so it never claims one that did not happen.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.approval import Approval
from agents.flows.common import Resources, add_usage, clip, decide, messages, task_block
from agents.flows.researcher import cited, passage_block, search_passages
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
ASKS_ESCALATE = re.compile(r"\bescalat", re.IGNORECASE)
_CAP = re.compile(r"Refund by agent: up to \$([\d,]+\.\d\d)")

DECIDE_SYSTEM = (
    "You are a customer support agent. From the records and the policy notes, decide what "
    "to do and write the reply to the person who asked. Use exact ids, dates and amounts "
    "from the records and the policy's exact terms. action: refund only when the request "
    "asks for a refund to be issued and the policy allows it; escalate only when the request "
    "or the policy says to escalate the ticket; otherwise none. The reply explains the "
    "decision in 2 to 4 sentences and cites policy notes by number, like [1]."
)


class SupportDecision(BaseModel):
    """The decision on a support request and the reply."""

    action: Literal["none", "refund", "escalate"] = Field(description="What to do.")
    refund_amount: float = Field(default=0.0, ge=0, description="Refund in dollars (refund only).")
    reply: str = Field(description="The reply: the decision and why, 2 to 4 sentences.")


class SupportState(FlowState, total=False):
    ids: dict[str, list[str]]
    records: list[str]
    passages: list[dict[str, str]]
    decision: dict[str, Any]
    pending: list[ToolCallRecord]
    done: list[str]
    """What the actions' tool results said (run, rejected or refused)."""
    notes: list[str]


def request_ids(text: str) -> dict[str, list[str]]:
    return {kind: list(dict.fromkeys(rx.findall(text))) for kind, rx in IDS.items()}


def refund_cap(records: list[str]) -> float | None:
    for record in records:
        if m := _CAP.search(record):
            return float(m.group(1).replace(",", ""))
    return None


class SupportSteps:
    def __init__(self, spec: AgentSpec, resources: Resources) -> None:
        self.spec = spec
        self.res = resources

    def _request(self, state: SupportState) -> str:
        task = state.get("task") or {}
        return f"{task.get('instruction') or ''}\n{state.get('goal') or ''}"

    async def lookup(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Look up every customer, order and ticket id in the request; retrieve the policy."""
        ctx = self.res.tools(runtime)
        tools = {
            t.name: t
            for t in build_tools(["lookup_customer", "lookup_order", "lookup_ticket"], ctx)
        }
        ids = request_ids(self._request(state))
        records: list[str] = []
        for kind, tool, arg in (("ticket", "lookup_ticket", "ticket_id"),
                                ("order", "lookup_order", "order_id"),
                                ("customer", "lookup_customer", "customer_id")):  # fmt: skip
            for value in ids[kind]:
                try:
                    records.append(str(await tools[tool].ainvoke({arg: value})))
                except Exception as err:  # an unknown id is a fact for the reply, not a crash
                    records.append(f"{kind} {value}: {err}")
        kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)
        task = state.get("task") or {}
        query = str(task.get("instruction") or state.get("goal") or "") + " policy"
        passages = await asyncio.to_thread(search_passages, kb, [query], 3)
        return {"ids": ids, "records": records, "passages": passages}

    async def decide(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """One constrained call: the action and the reply; code gates the action."""
        records = (
            "\n\n".join(state.get("records") or []) or "(no customer, order or ticket id given)"
        )
        user = (
            f"Records:\n{clip(records, 2500)}\n\nPolicy notes:\n{passage_block(state.get('passages') or [])}"
            f"\n\n{task_block(dict(state))}"
        )
        model = await self.res.model(runtime)
        value, usage, error = await decide(
            model, SupportDecision, messages(DECIDE_SYSTEM, user), get_config()
        )
        update: dict[str, Any] = {
            "usage": add_usage(dict(state), usage.input_tokens, usage.output_tokens, usage.calls),
            "steps": usage.calls,
        }
        if value is None:
            return {**update, "decision": {}, "notes": [f"no decision: {error}"], "pending": []}
        update["decision"] = value.model_dump()
        update["pending"], update["notes"] = self._gate(
            state, value, context_of(runtime).settings.review.high_risk_tools
        )
        return update

    def _gate(
        self, state: SupportState, d: SupportDecision, review: bool
    ) -> tuple[list[ToolCallRecord], list[str]]:
        request = self._request(state)
        ids = state.get("ids") or {}
        notes: list[str] = []
        if d.action == "none":
            return [], notes
        if FORBIDS.search(request):
            return [], [f"{d.action} not done: the request forbids actions"]
        status: Literal["needs_approval", "approved"] = "needs_approval" if review else "approved"
        if d.action == "refund":
            cap = refund_cap(state.get("records") or [])
            if not ids.get("order") or cap is None or not ASKS_REFUND.search(request):
                return [], [
                    "refund not done: the request does not ask for one, or the order allows none"
                ]
            amount = round(min(d.refund_amount, cap) if d.refund_amount > 0 else cap, 2)
            args = {"order_id": ids["order"][0], "amount": amount, "reason": clip(d.reply, 200)}
            return [
                ToolCallRecord(
                    id="refund", tool="issue_refund", args=args, thought="", status=status
                )
            ], notes  # type: ignore[typeddict-item]
        if not ids.get("ticket") or not ASKS_ESCALATE.search(request):
            return [], ["escalation not done: no ticket, or the request does not ask for it"]
        args = {"ticket_id": ids["ticket"][0], "status": "escalated", "note": clip(d.reply, 300)}
        return [
            ToolCallRecord(
                id="escalate", tool="update_ticket", args=args, thought="", status=status
            )
        ], notes  # type: ignore[typeddict-item]

    async def act(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Run the approved actions once; a rejection is reported, never run."""
        ctx = self.res.tools(runtime)
        tools = {t.name: t for t in build_tools(["issue_refund", "update_ticket"], ctx)}
        done: list[str] = []
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
            except Exception as err:
                done.append(f"{call['tool']} refused: {err}")
        return {"done": done, "pending": []}

    async def report(self, state: SupportState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        decision = state.get("decision") or {}
        passages = state.get("passages") or []
        reply = str(decision.get("reply") or "").strip()
        if not reply:
            return {"output": "", "error": "; ".join(state.get("notes") or ["no decision"])}
        citations = cited(reply, passages)
        text = re.sub(
            r"\s*\[(\d)\]",
            lambda m: (
                f" [{passages[int(m.group(1)) - 1]['path']}]"
                if 0 < int(m.group(1)) <= len(passages)
                else ""
            ),
            reply,
        )
        lines = [text, "", "Actions taken: " + ("; ".join(state.get("done") or []) or "none.")]
        if state.get("records"):
            lines += [
                "",
                "Records looked up:",
                *[f"- {r.splitlines()[0]}" for r in state["records"]],
            ]
        if citations:
            lines += ["", "Sources:", *[f"- {c}" for c in citations]]
        return {"output": "\n".join(lines), "citations": citations, "error": None}

    def after_decide(self, state: SupportState) -> Literal["approve", "act", "report"]:
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
    builder.add_node("decide", steps.decide)
    builder.add_node("approve", Approval(spec).approve)  # type: ignore[arg-type]
    builder.add_node("act", steps.act)
    builder.add_node("report", steps.report)
    builder.add_edge(START, "lookup")
    builder.add_edge("lookup", "decide")
    builder.add_conditional_edges("decide", steps.after_decide)
    builder.add_edge("approve", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", "__end__")
    return builder.compile(name=name)
