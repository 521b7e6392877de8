"""The support flow with a scripted model and the real tools: what the request means comes
from the model's answers to closed questions (scripted here per question), what is done
follows from those answers, the records and the policy in code."""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command

from agents import AgentRegistry, build_specialist
from agents.flows import support_questions as q
from agents.flows.reply_checks import consistent, stated_only, unclaimed
from core.models import TestChatModel
from core.settings import Settings
from tests.scripting import context_of
from tools.customer_records import OrderRecord, TicketRecord, as_state, from_state
from tools.refund_rules import Blocker, OrderLine, RefundVerdict

REGISTRY = AgentRegistry.builtin()
MODELS = {"ts": {"provider": "test", "model": "ts", "tool_mode": "structured"}}
LETTER = {"info": "A", "refund": "B", "escalate": "C", "status": "D",
          "damaged": "A", "our_error": "B", "other": "C"}
STATUS_LETTER = {"resolved": "A", "closed": "B", "pending": "C", "open": "D"}


def config(tmp_path: Path, **overrides: Any) -> RunnableConfig:
    settings = {"model": "ts", "models": MODELS, "data_dir": str(tmp_path), **overrides}
    return {"configurable": {"thread_id": f"run-{uuid.uuid4().hex[:8]}", "settings": settings}}


def support_model(
    reply: str, intent: str = "info", forbids: str = "No", reason: str = "other",
    returned: str = "No", asked: list[str] | None = None, status: str = "resolved",
    item: str | None = None,
) -> TestChatModel:
    """A model that answers each of the flow's questions as told (by the question's system
    message) and replies ``reply`` to the drafting step."""
    answers = {q.INTENT_SYSTEM: LETTER[intent], q.FORBIDS_SYSTEM: forbids,
               q.REASON_SYSTEM: LETTER[reason], q.RETURNED_SYSTEM: returned,
               q.WHERE_SYSTEM: "B" if returned == "Yes" else "A",
               q.STATUS_SYSTEM: STATUS_LETTER[status]}  # fmt: skip

    def text(messages: list[BaseMessage]) -> str:
        system = str(messages[0].content)
        if asked is not None and (system in answers or system == q.ITEM_SYSTEM):
            asked.append({v: k for k, v in vars(q).items() if isinstance(v, str)}[system])
        if system == q.ITEM_SYSTEM and item is not None:  # yes for the named item only
            this = str(messages[-1].content).split("This item: ", 1)[1].splitlines()[0]
            return "Yes" if item and item in this else "No"
        return answers.get(system, reply)

    return TestChatModel(text=text)


def factory(model: TestChatModel) -> Any:
    def make(settings: Settings, role: str) -> TestChatModel:
        return model

    return make


async def run(model: TestChatModel, cfg: RunnableConfig, goal: str) -> dict[str, Any]:
    spec = REGISTRY.get("support").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    task = {"id": "t1", "agent": "support", "instruction": goal, "depends_on": []}
    return dict(await graph.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg)))


def refunds(tmp_path: Path, order: str = "O1001") -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        return conn.execute(
            "SELECT order_id, amount_cents FROM refunds WHERE order_id=?", (order,)
        ).fetchall()


def ticket_status(tmp_path: Path, ticket: str) -> str:
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        return str(conn.execute("SELECT status FROM tickets WHERE id=?", (ticket,)).fetchone()[0])


# -- each intent ---------------------------------------------------------------------------------


async def test_refund_pauses_for_approval_and_runs_once(tmp_path: Path) -> None:
    model = support_model("It arrived damaged, so it is refunded in full [1].",
                          intent="refund", reason="damaged", returned="Yes")  # fmt: skip
    cfg = config(tmp_path)
    spec = REGISTRY.get("support").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec, model_factory=factory(model))
    parent = StateGraph(dict)  # type: ignore[type-var]  # a parent that owns the checkpointer
    parent.add_node("support", graph)
    parent.add_edge(START, "support")
    app = parent.compile(checkpointer=InMemorySaver())
    goal = "C001 says the headset came broken and it is already back with us; sort out O1001."
    task = {"id": "t1", "agent": "support", "instruction": goal, "depends_on": []}
    first = await app.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg))
    pause = first["__interrupt__"][0].value
    assert pause["tool"] == "issue_refund" and pause["args"]["order_id"] == "O1001"
    assert pause["args"]["amount"] == 129.0  # what the order allows: damaged, so no label
    assert pause["args"]["acting_for"] == "C001"
    assert "order O1001 of customer C001" in pause["action_requests"][0]["description"]  # owner shown
    assert refunds(tmp_path) == []
    out = await app.ainvoke(Command(resume={"approved": True}), cfg, context=context_of(cfg))
    assert refunds(tmp_path) == [("O1001", 12900)]
    assert "Actions taken: Refund #" in out["output"]
    again = await app.ainvoke(Command(resume={"approved": True}), cfg, context=context_of(cfg))
    assert refunds(tmp_path) == [("O1001", 12900)] and again  # once, under its key


async def test_damaged_item_of_50_dollars_or_more_waits_for_its_return(tmp_path: Path) -> None:
    model = support_model("We have refunded $129.00 [1].", intent="refund", reason="damaged")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "my headphones O1001 (C001) showed up smashed, money back pls")
    assert refunds(tmp_path) == []  # $129.00 >= $50: the return comes first
    assert "Actions taken: none. No refund yet: the item costs $50 or more" in out["output"]
    assert "refunded $129.00" not in out["output"].split("Actions taken")[0]


async def test_no_action_when_the_request_forbids_it(tmp_path: Path) -> None:
    asked: list[str] = []
    model = support_model("It is eligible [1]. I issued a refund.", intent="refund",
                          forbids="Yes", asked=asked)  # fmt: skip
    goal = "Refund for O1001? look only, leave everything as is."
    out = await run(model, config(tmp_path, review={"high_risk_tools": False}), goal)
    assert refunds(tmp_path) == [] and "Actions taken: none. No action: the request forbids" in out["output"]
    assert "inside the window (15 days left)" in out["output"]  # computed by code
    assert "I issued" not in out["output"]
    assert asked == ["INTENT_SYSTEM", "FORBIDS_SYSTEM"]  # no reason asked: nothing to act on


async def test_information_request_asks_one_question_and_acts_on_nothing(tmp_path: Path) -> None:
    asked: list[str] = []
    model = support_model("Ticket T503 is open [1].", intent="info", asked=asked)
    out = await run(model, config(tmp_path), "where is the parcel of T503, whats the status")
    assert "__interrupt__" not in out and "Actions taken: none. No action: the request asks for information only." in out["output"]
    assert asked == ["INTENT_SYSTEM"]


async def test_refund_deducts_the_label_when_not_our_fault(tmp_path: Path) -> None:
    model = support_model("Refund issued minus the label [1].", intent="refund", reason="other")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "Tom (C004) went off the colour of the O1008 earbuds; give him his money")
    assert refunds(tmp_path, "O1008") == [("O1008", 5205)] and "Refund #" in out["output"]


async def test_escalates_only_when_asked_and_after_approval(tmp_path: Path) -> None:
    model = support_model("The ticket goes to a team lead.", intent="escalate")
    first = await run(model, config(tmp_path), "T503 needs a team lead now, the VIP is angry")
    pause = first["__interrupt__"][0].value
    assert pause["tool"] == "update_ticket"
    assert pause["args"]["ticket_id"] == "T503" and pause["args"]["status"] == "escalated"
    assert pause["args"]["acting_for"] == "C007"  # the ticket's customer: the thread's customer
    asked = await run(support_model("It may be escalated.", intent="info"), config(tmp_path),
                      "Should ticket T503 be escalated under the escalation policy?")  # fmt: skip
    assert "__interrupt__" not in asked and "Actions taken: none." in asked["output"]


async def test_over_the_agent_limit_nothing_is_refunded(tmp_path: Path) -> None:
    model = support_model("I refunded the whole order. [1]", intent="refund", reason="damaged")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "James Chen wants all his money back for O1003, the screen is bad")
    assert refunds(tmp_path, "O1003") == []  # $661 left is above the $500 agent limit
    assert "Actions taken: none. No refund: a full refund of $661.00 is above the $500" in out["output"]
    assert "Ticket T502" in out["output"]  # the order's ticket, looked up through the link


# -- the safe side when the model is unsure --------------------------------------------------------


def _likely(**p: float) -> AIMessage:
    """A reply read as token likelihoods: each label's probability as given."""
    alternatives = [{"token": label, "logprob": math.log(v)} for label, v in p.items()]
    best = max(p, key=lambda k: p[k])
    return AIMessage(content=best, response_metadata={"logprobs": {"content": [
        {"token": best, "logprob": math.log(p[best]), "top_logprobs": alternatives}]}})


async def test_an_unsure_reading_takes_no_action_and_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path, review={"high_risk_tools": False})
    near_tie = TestChatModel(script=[_likely(A=0.33, B=0.35, C=0.32), "No", "Here is what I found."])
    out = await run(near_tie, cfg, "C001 O1001 hmm money thing?")
    assert refunds(tmp_path) == []
    assert ("No action: it is not clear that the request asks for a refund (confidence 0.35, "
            "information only 0.33)") in out["output"]  # fmt: skip
    unsure_reason = TestChatModel(script=[_likely(A=0.3, B=0.4, C=0.3), _likely(No=0.6, Yes=0.4),
                                          _likely(A=0.38, B=0.3, C=0.32), "Here is what I found."])  # fmt: skip
    out = await run(unsure_reason, cfg, "refund O1008 for C004 pls, reasons unclear")
    assert refunds(tmp_path, "O1008") == []
    assert "No refund yet: it is not clear why the customer wants it" in out["output"]
    leading = TestChatModel(script=[_likely(A=0.3, B=0.4, C=0.3), _likely(No=0.6, Yes=0.4),
                                    _likely(A=0.2, B=0.35, C=0.45), "Refunded."])  # fmt: skip
    out = await run(leading, cfg, "refund O1008 for C004 pls, he changed his mind")
    assert refunds(tmp_path, "O1008") == [("O1008", 5205)]  # a clear lead acts: label deducted


# -- authorization: an action only for the customer the request is about ----------------------------


async def test_a_request_for_one_customer_never_acts_on_anothers_order(tmp_path: Path) -> None:
    """Finding: a request from C001 refunded C002's order and closed C002's ticket."""
    model = support_model("Done [1].", intent="refund", reason="damaged")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "I am customer C001. Refund order O1003, it arrived broken.")
    assert refunds(tmp_path, "O1003") == []
    assert "order O1003 belongs to customer C002, not to customer C001" in out["output"]
    model = support_model("Done.", intent="escalate")
    out = await run(model, cfg, "I am customer C001. Escalate ticket T502 to a team lead.")
    assert ticket_status(tmp_path, "T502") == "open"
    assert "ticket T502 belongs to customer C002, not to customer C001" in out["output"]


async def test_a_request_about_several_customers_acts_for_none(tmp_path: Path) -> None:
    model = support_model("Done [1].", intent="refund", reason="our_error")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "Refund O1008 and O1003, both never arrived.")
    assert refunds(tmp_path, "O1008") == [] and refunds(tmp_path, "O1003") == []
    assert "records of several customers" in out["output"]


# -- reply checks read the records' fields ----------------------------------------------------------


def order(status: str = "delivered", blocker: Blocker | None = None, cap: int = 12900,
          paid: int = 12900, tracking: str | None = "1Z999AA10000001") -> OrderRecord:
    verdict = RefundVerdict(order_id="O1001", owner="C001", paid_cents=paid, refunded_cents=0,
                            blocker=blocker, cap_cents=0 if blocker else cap,
                            label_refund_cents=None)  # fmt: skip
    return OrderRecord(id="O1001", owner="C001", status=status, text="Order O1001", verdict=verdict,
                       tracking=tracking, dates=frozenset({"2026-11-22", "2026-11-19"}),
                       amounts=frozenset({12900, 0}))  # fmt: skip


def test_an_item_refund_follows_the_policy_for_one_item() -> None:
    """One unit of a line: its price, plus the order's shipping fee when the return is our
    fault, less the label otherwise; never above what is left or the agent limit."""
    lines = (OrderLine("TAB", "Tablet 11 Pro", 1, 64900), OrderLine("CBL", "USB-C Cable 2m", 2, 1200))
    verdict = RefundVerdict(order_id="O9", owner="C1", paid_cents=67799, refunded_cents=0,
                            blocker=None, cap_cents=50000, label_refund_cents=None, lines=lines,
                            shipping_cents=499)  # fmt: skip
    assert verdict.item_amount_cents("CBL", our_fault=True) == 1200 + 499
    assert verdict.item_amount_cents("CBL", our_fault=False) == 1200 - 695
    assert verdict.item_amount_cents("TAB", our_fault=True) is None  # one item above $500
    assert verdict.item_amount_cents("NOPE", our_fault=True) is None
    nearly_done = RefundVerdict(order_id="O9", owner="C1", paid_cents=67799, refunded_cents=67000,
                                blocker=None, cap_cents=799, label_refund_cents=None, lines=lines,
                                shipping_cents=499)  # fmt: skip
    assert nearly_done.item_amount_cents("CBL", our_fault=True) == 799  # what is left
    blocked = RefundVerdict(order_id="O9", owner="C1", paid_cents=67799, refunded_cents=0,
                            blocker=Blocker("outside_window", "late"), cap_cents=0,
                            label_refund_cents=None, lines=lines)  # fmt: skip
    assert blocked.item_amount_cents("CBL", our_fault=True) is None
    # the records round-trip through a checkpoint, and one saved before item lines still loads
    record = OrderRecord(id="O9", owner="C1", status="delivered", text="Order O9", verdict=verdict)
    assert from_state(json.loads(json.dumps(as_state(record)))) == record
    old = as_state(record)
    for key in ("lines", "shipping_cents", "delivered"):
        del old["verdict"][key]
    loaded = from_state(old)
    assert isinstance(loaded, OrderRecord) and loaded.verdict.lines == ()


def test_reply_never_contradicts_the_refund_verdict() -> None:
    late = order(blocker=Blocker("outside_window", "delivered 55 days ago, outside the 30-day refund window"))
    kept, dropped = consistent("It is still eligible. It is outside the 30-day window. "
                               "According to the policy, we can refund it.", [late])  # fmt: skip
    assert kept == "It is outside the 30-day window."
    assert dropped == ["It is still eligible.", "According to the policy, we can refund it."]
    over = order(paid=66100, cap=50000)  # above the agent limit: a team lead's call
    assert consistent("It is not eligible for a full refund by an agent.", [over])[1] == []


def test_reply_states_no_status_date_amount_or_tracking_the_records_do_not_show() -> None:
    delivered = order()
    ticket = TicketRecord(id="T501", owner="C001", status="open", subject="crackles",
                          text="Ticket T501", order_id="O1001")  # fmt: skip
    reply = (
        "Order O1001 was delivered on 2026-11-22 [1]. It was shipped on November 19, 2026. "
        "Your order has not been delivered yet. It arrived on 2026-11-25. "
        "You paid $129.00 and can get $150.00 back. Tracking 1Z999AA10000001 shows it. "
        "Tracking number 1Z888BB20000009 shows it in transit. Refunds above $500 need a lead. "
        "Ticket T501 is now closed. Ticket T501 is open."
    )
    kept, dropped = stated_only(reply, [delivered, ticket], policy=["limit of $500 per refund"])
    assert dropped == [
        "Your order has not been delivered yet.", "It arrived on 2026-11-25.",
        "You paid $129.00 and can get $150.00 back.",
        "Tracking number 1Z888BB20000009 shows it in transit.", "Ticket T501 is now closed.",
    ]
    assert kept.startswith("Order O1001 was delivered on 2026-11-22 [1]. It was shipped on November 19")
    assert "Refunds above $500 need a lead." in kept and kept.endswith("Ticket T501 is open.")
    processing = order(status="processing", tracking=None)
    assert stated_only("It has shipped and was delivered.", [processing])[1] == [
        "It has shipped and was delivered."]
    assert stated_only("It has not shipped yet.", [processing])[1] == []
    # what an action changed since the lookup is not held against the reply
    assert stated_only("Ticket T501 is now escalated.", [ticket], changed={"T501"})[1] == []


def test_reply_sentences_claiming_an_action_that_did_not_run_are_dropped() -> None:
    reply = (
        "Order O1003 is above the $500 agent limit. I have escalated ticket T502 to a team "
        "lead. The refund has been processed. It should be escalated to a team lead. "
        "$59.00 has already been refunded on this order. It will be refunded once returned."
    )
    kept, dropped = unclaimed(reply, set())
    assert dropped == ["I have escalated ticket T502 to a team lead.", "The refund has been processed."]
    assert kept.startswith("Order O1003 is above") and "should be escalated" in kept


async def test_support_reply_never_states_what_the_records_do_not_show(tmp_path: Path) -> None:
    model = support_model(
        "Order O1001 was delivered 15 days ago [1]. It has not shipped yet. Your refund of "
        "$300.00 is on its way. See [warranty-terms.md] too.", intent="info")
    out = await run(model, config(tmp_path), "Is O1001 refundable? only tell me")
    reply = out["output"].split("\n\nActions taken")[0]
    assert reply.startswith("Order O1001 was delivered 15 days ago [")
    assert "not shipped" not in reply and "$300.00" not in reply and "warranty-terms.md" not in reply


async def test_a_reply_may_state_what_the_action_that_ran_changed(tmp_path: Path) -> None:
    model = support_model("Ticket T503 has been escalated to a team lead.", intent="escalate")
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "please escalate T503, the customer C007 waited too long")
    assert ticket_status(tmp_path, "T503") == "escalated"
    assert out["output"].startswith("Ticket T503 has been escalated to a team lead.")
    assert "Actions taken: Ticket T503 updated: status open -> escalated" in out["output"]


async def test_resolves_a_ticket_only_when_asked_after_approval_and_never_an_escalated_one(
    tmp_path: Path,
) -> None:
    model = support_model("The ticket is marked resolved.", intent="status")
    first = await run(model, config(tmp_path), "C008 got a new case and is happy, close T508 as solved")
    pause = first["__interrupt__"][0].value
    assert pause["tool"] == "update_ticket" and ticket_status(tmp_path, "T508") == "open"
    assert pause["args"]["ticket_id"] == "T508" and pause["args"]["status"] == "resolved"
    assert pause["args"]["acting_for"] == "C008"
    cfg = config(tmp_path, review={"high_risk_tools": False})
    out = await run(model, cfg, "C008 got a new case and is happy, close T508 as solved")
    assert ticket_status(tmp_path, "T508") == "resolved"
    assert "Actions taken: Ticket T508 updated: status open -> resolved" in out["output"]
    again = await run(model, cfg, "please mark T508 resolved for C008")
    assert "No status change: ticket T508 is already resolved." in again["output"]
    # an escalated ticket belongs to the team it went to: the tool refuses, nothing changes
    out = await run(model, cfg, "C006 says the laptop is fine now, resolve T506")
    assert ticket_status(tmp_path, "T506") == "escalated"
    assert "is escalated; the team that owns it resolves it" in out["output"]
    claimed = await run(support_model("I have resolved ticket T501.", intent="info"), cfg,
                        "Has T501 been resolved for C001?")  # fmt: skip
    assert ticket_status(tmp_path, "T501") == "open"
    assert "I have resolved ticket T501." not in claimed["output"]


async def test_refunds_one_item_of_a_multi_item_order_when_the_request_names_it(
    tmp_path: Path,
) -> None:
    """Partial refunds (the policy allows one item of a multi-item order): which item is the
    model's reading (yes/no per item line, one leading); the amount is code's (the item's price, with
    the shipping fee when it is our fault, less the label otherwise)."""
    cfg = config(tmp_path, review={"high_risk_tools": False})
    asked: list[str] = []
    model = support_model("The cable is refunded.", intent="refund", reason="damaged",
                          item="Cable", asked=asked)  # fmt: skip
    out = await run(model, cfg, "C008: the cable from O1015 arrived dead, refund it")
    assert refunds(tmp_path, "O1015") == [("O1015", 1200)]  # under $50: no return needed
    assert "ITEM_SYSTEM" in asked
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        reason = conn.execute("SELECT reason FROM refunds WHERE order_id='O1015'").fetchone()[0]
    assert "partial refund for one USB-C Cable 2m" in reason and "Refund #" in out["output"]
    # changed mind about one item: its price less the return label
    model = support_model("Refunded.", intent="refund", reason="other", item="Mouse")
    out = await run(model, cfg, "C006 doesn't want the mouse from O1011 any more, refund it")
    assert refunds(tmp_path, "O1011") == [("O1011", 2900 - 695)]
    # one of two cables: one unit, not the line (O1006 holds 2 x USB-C Cable 2m at $12)
    model = support_model("Refunded.", intent="refund", reason="damaged", item="Cable")
    await run(model, cfg, "C003: one of the two cables from O1006 frays, refund that cable")
    assert refunds(tmp_path, "O1006") == [("O1006", 1200)]
    # a yes for every item: which one is unclear, so nothing is refunded and the reply asks
    model = support_model("Which item?", intent="refund", reason="damaged", item="")
    inner = model.text
    assert callable(inner)

    def every_item(messages: list[BaseMessage]) -> str:
        return "Yes" if str(messages[0].content) == q.ITEM_SYSTEM else inner(messages)

    fresh = config(tmp_path / "a", review={"high_risk_tools": False})
    out = await run(TestChatModel(text=every_item), fresh, "C008: something in O1015 broke, refund it")
    assert refunds(tmp_path / "a", "O1015") == []
    assert "it is not clear which item of order O1015" in out["output"]
    # the whole order, as before (O1011's $928 is over the agent limit)
    model = support_model("Refunded.", intent="refund", reason="other", item="")
    out = await run(model, config(tmp_path / "b", review={"high_risk_tools": False}),
                    "C006 wants all of O1011 refunded, changed his mind")
    assert refunds(tmp_path / "b", "O1011") == []
    assert "above the $500 agent limit" in out["output"]


async def test_sets_the_status_the_request_asks_for_and_asks_back_when_unsure(tmp_path: Path) -> None:
    """A status change other than escalation: the model chooses which status (pending here);
    code sets it once, with a note, for the request's customer; a near-tie sets nothing."""
    cfg = config(tmp_path, review={"high_risk_tools": False})
    asked: list[str] = []
    model = support_model("T509 is on hold until the customer replies.", intent="status",
                          status="pending", asked=asked)  # fmt: skip
    out = await run(model, cfg, "C010 still has to send the battery log, put T509 on hold")
    assert ticket_status(tmp_path, "T509") == "pending"
    assert "STATUS_SYSTEM" in asked
    assert "Actions taken: Ticket T509 updated: status open -> pending" in out["output"]
    # reopening: the same question, another answer
    model = support_model("T509 is open again.", intent="status", status="open")
    out = await run(model, cfg, "C010 wrote back, the battery still drains: reopen T509")
    assert ticket_status(tmp_path, "T509") == "open"

    inner = support_model("Done.", intent="status").text
    assert callable(inner)

    def reply(messages: list[BaseMessage]) -> str:  # no readable status letter: unsure
        return "" if str(messages[0].content) == q.STATUS_SYSTEM else inner(messages)

    out = await run(TestChatModel(text=reply), cfg, "do something with T509 for C010")
    assert ticket_status(tmp_path, "T509") == "open"
    assert "No status change: it is not clear which status the ticket should get" in out["output"]


async def test_the_item_is_back_only_when_a_clause_of_the_request_says_so() -> None:
    """"Already returned?" is asked of each clause (over a whole damaged-item request the
    model leaned to yes); the clause most likely to say so answers."""
    asked: list[str] = []

    def text(messages: list[BaseMessage]) -> str:
        clause = str(messages[-1].content).splitlines()[0]
        if messages[0].content == q.WHERE_SYSTEM:  # asked only after a sure yes
            return "B" if "warehouse" in clause else "A"
        asked.append(clause)
        return "Yes" if "warehouse" in clause or "arrived" in clause else "No"

    model = TestChatModel(text=text)
    back = await q.ask_returned(model, "Refund O1006, the charger was faulty.  It reached our\nwarehouse today!")
    assert back.sure("yes")
    assert asked == ["Sentence: Refund O1006", "Sentence: the charger was faulty.",
                     "Sentence: It reached our warehouse today!"]  # fmt: skip
    assert not (await q.ask_returned(model, "Refund O1006 - the charger was faulty; she has it")).sure("yes")
    # a yes the other form does not bear out ("where is it now?": with the customer) is a no
    arrived = await q.ask_returned(model, "Refund O1006, it arrived damaged.")
    assert arrived.choice == "no" and not arrived.sure("yes")
    assert q.clauses("  ") == [""] and len(q.clauses("a, b c. " * 40)) == 80
    asked.clear()
    await q.ask_returned(model, "x, y z. " * 40)
    assert len(asked) == q.MAX_CLAUSES
