"""What a support request means, asked of the model as closed questions.

The support flow acts on a customer's records only when the request asks it to; which action
a request asks for, whether it forbids acting, which status a ticket should get, which item
of an order a refund is for, why the customer wants a refund and whether the item is
already back are understanding, not rules, so the model answers them — each as
a few labelled options or yes/no with worked examples (``core.models.judgment``), read as
token likelihoods. Code then applies the policy to the answers (``support.plan``) and takes
the safe side when an answer that would lead to an action is not confident.

Every question keeps one system message (byte-identical across calls: the server's prompt
cache serves it) and its examples are general ones written here, not requests of any
evaluation set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from core.models.judgment import Example, Judgment, Option, choose, yes_no

__all__ = [
    "ACT_MARGIN",
    "CONFIDENT",
    "REASON_CONFIDENT",
    "Reading",
    "ask_forbids",
    "ask_intent",
    "ask_item",
    "ask_reason",
    "ask_returned",
    "ask_status",
]

CONFIDENT = 0.6
"""The least probability a yes that leads to an action needs (the item is already back)."""
ACT_MARGIN = 0.03
"""How far the action option (refund, escalate, resolve) must lead the information-only option
before code acts on it. The embedded 0.5B model spreads its probability thinly over three
options: on 20 requests written for ``benchmarks/support_questions.py`` its choice was right
for every intent, the action requests leading information-only by 0.036 to 0.14 and the
information requests led by information-only by 0.13 or more; a near-tie takes no action."""
MAX_CLAUSES = 12
"""The most clauses of one request asked about (a long paste costs no more than this)."""
REASON_CONFIDENT = 0.42
"""The least probability the refund reason needs (it decides the amount and whether the item
must come back first). Measured on the same requests: the 0.5B model leans to the first
option (damaged); its right answers scored 0.43–0.47, its wrong ones 0.36–0.41. Below it
no refund is issued and the reply asks for the reason."""

STATUS_CONFIDENT = 0.5
"""The least probability the new ticket status needs before code sets it (below it the reply
asks which status is meant)."""

Intent = Literal["info", "refund", "escalate", "status"]
Reason = Literal["damaged", "our_error", "other"]

INTENT_SYSTEM = (
    "You read customer-support requests sent to a support agent. Decide what the request "
    "asks the agent to DO now. Asking whether something is possible, what the policy says, "
    "or to check and explain is information only; a request that asks a question and also "
    "tells the agent to act (if allowed) asks for the action. Answer with one letter."
)
INTENT_OPTIONS = (
    Option("info", "Only information: answer a question, check or explain; nothing to change"),
    Option("refund", "Give the customer money back now: issue or process a refund"),
    Option("escalate", "Escalate the ticket: pass it to a team lead or manager"),
    Option("status", "Change a ticket's status otherwise: mark it resolved or closed, reopen "
                     "it, or set it pending / on hold"),
)
INTENT_EXAMPLES = (
    Example("Request: Can you tell me when order O2210 will arrive?", "info"),
    Example("Request: pls refund O3301 for the client, the jacket was too small", "refund"),
    Example("Request: Would a refund be allowed for order O4410? Just tell me, I will decide.",
            "info"),
    Example("Request: customer is furious about T880 and wants a manager. push it up please",
            "escalate"),
    Example("Request: The blender from order O5120 stopped working. Give her the money back "
            "as our policy allows.", "refund"),
    Example("Request: What does our warranty cover for a cracked screen on order O6631?",
            "info"),
    Example("Request: Ticket T771 has waited a week; hand it over to a team lead.", "escalate"),
    Example("Request: Kunde C120 möchte sein Geld zurück für O7702, bitte erstatten.", "refund"),
    Example("Request: The replacement arrived and works, so T412 can be closed out as solved.",
            "status"),
    Example("Request: Is O8813 still in the return window? If it is, refund the customer.",
            "refund"),
    Example("Request: Has ticket T319 been answered yet? What did we tell the customer?", "info"),
    Example("Request: no more complaints from C341 since the new router came, T905 is done",
            "status"),
    Example("Request: We asked C215 for the serial number; put T640 on hold until she answers. "
            "Which models does the recall cover?", "status"),
    Example("Request: The fault is back, so T733 needs to be opened again.", "status"),
)

FORBIDS_SYSTEM = (
    "You read customer-support requests. Answer Yes if the request tells the agent not to "
    "change anything (no refund, no ticket change; only look or explain), otherwise No."
)
FORBIDS_EXAMPLES = (
    Example("Request: Check order O2210 and explain the options. Don't refund anything yet.",
            "yes"),
    Example("Request: Refund order O3301, the customer returned it.", "no"),
    Example("Request: just look at T880 and tell me the status, no changes pls", "yes"),
    Example("Request: Escalate T771 to a team lead, the customer waited long enough.", "no"),
    Example("Request: Could we refund O4410? Only tell me, leave the order as it is.", "yes"),
    Example("Request: The customer never got O5120; please process the refund.", "no"),
    Example("Request: C230 wants his money back for O6120, the fan is faulty and he sent it "
            "back. Look at our rules and deal with it.", "no"),
    Example("Request: What would our policy allow for O6121? Do not issue anything.", "yes"),
    Example("Request: The customer says the fix worked, please mark T905 as resolved.", "no"),
    Example("Request: Is T412 sorted out by now? Only check it, don't close anything.", "yes"),
)

REASON_SYSTEM = (
    "You read why a customer wants their money back, from the request and their ticket. "
    "Choose the reason. Answer with one letter."
)
REASON_OPTIONS = (
    Option("damaged", "The item arrived damaged or broken, or is defective / does not work"),
    Option("our_error", "Our mistake: wrong item sent, something missing, or it never arrived"),
    Option("other", "Another reason or none: changed their mind, does not need or like it"),
)
REASON_EXAMPLES = (
    Example("Request: Refund O2210, the kettle leaks from the bottom since day one.", "damaged"),
    Example("Request: She ordered black shoes but we shipped brown ones. Refund please.",
            "our_error"),
    Example("Request: refund O3301, customer just doesnt want it anymore", "other"),
    Example("Request: The parcel for O4410 never showed up. Give the money back.", "our_error"),
    Example("Request: Issue the refund for O5120.\nTicket: Screen cracked when unboxed",
            "damaged"),
    Example("Request: He found it cheaper elsewhere and sent it back. Refund O6631.", "other"),
)

STATUS_SYSTEM = (
    "You read a customer-support request that asks to change a ticket's status. Which status "
    "should the ticket get? Answer with one letter."
)
STATUS_OPTIONS = (
    Option("resolved", "Resolved: the customer's problem is solved or answered"),
    Option("closed", "Closed: no further work at all (a duplicate, spam, the customer gone)"),
    Option("pending", "Pending / on hold: waiting for the customer or someone else to reply"),
    Option("open", "Open again: reopen it, the problem needs work again"),
)
STATUS_EXAMPLES = (
    Example("Request: The replacement arrived and works, so T412 can be closed out as solved.",
            "resolved"),
    Example("Request: We asked C215 for the serial number; put T640 on hold until she answers.",
            "pending"),
    Example("Request: The fault is back, so T733 needs to be opened again.", "open"),
    Example("Request: T902 is the same complaint as T901, shut it down, nothing to do there.",
            "closed"),
    Example("Request: waiting on the courier's report for T318, mark it as such pls", "pending"),
    Example("Request: C341 confirmed the refund arrived, T905 is done.", "resolved"),
    Example("Request: customer wrote again, the app still crashes - reopen T277", "open"),
)
"""Asked only when the intent is a status change (escalation has its own option): which of
the tool's statuses the request means, read as a likelihood."""

ITEM_SYSTEM = (
    "You read a customer-support request that asks for a refund, the items of the order, and "
    "one of those items. Answer Yes if the request wants only this item refunded (it names or "
    "describes this item and not the others). Answer No if it is about another item, or about "
    "the whole order or every item."
)
ITEM_EXAMPLES = (
    Example("Request: Refund the phone case from O2210, it came scratched.\nItems: Phone 12; "
            "Phone Case Slim\nThis item: Phone Case Slim", "yes"),
    Example("Request: Refund the phone case from O2210, it came scratched.\nItems: Phone 12; "
            "Phone Case Slim\nThis item: Phone 12", "no"),
    Example("Request: Refund order O3301 in full, the parcel never came.\nItems: Desk Lamp; "
            "LED Bulb 4-pack\nThis item: Desk Lamp", "no"),
    Example("Request: the mouse in O4410 was dead on arrival, money back for that pls\nItems: "
            "Wireless Keyboard; Wireless Mouse\nThis item: Wireless Mouse", "yes"),
    Example("Request: She changed her mind about O5120, give her money back.\nItems: Coffee "
            "Grinder; Milk Frother\nThis item: Milk Frother", "no"),
    Example("Request: C230's charger from O6120 overheats; refund just the charger.\nItems: "
            "Laptop 15; Laptop Charger 90W\nThis item: Laptop 15", "no"),
    Example("Request: C230's charger from O6120 overheats; refund just the charger.\nItems: "
            "Laptop 15; Laptop Charger 90W\nThis item: Laptop Charger 90W", "yes"),
    Example("Request: He no longer wants the case that came with his phone in O8812; refund "
            "the case.\nItems: Phone 13; Phone Case Clear\nThis item: Phone 13", "no"),
    Example("Request: He no longer wants the case that came with his phone in O8812; refund "
            "the case.\nItems: Phone 13; Phone Case Clear\nThis item: Phone Case Clear", "yes"),
)
"""Asked once per item line of an order with several, to find the one a partial refund is for
("Partial refunds are allowed, for example for one item of a multi-item order")."""
ITEM_CONFIDENT = 0.5
"""The least yes the item refunded alone needs: more likely yes than no (the margin below
guards the choice; docs/benchmarks.md §8)."""
ITEM_MARGIN = 0.15
"""How far the likeliest item's yes must lead every other item's before it is refunded alone
(a request about the whole order draws similar yeses for every item)."""
ALL_MARGIN = 0.1
"""The whole order is meant when no item's yes is likelier than no and none stands out by
this much; between the two bars which item is meant is unclear, and the reply asks."""
MAX_ITEMS = 8
"""The most item lines asked about (a larger order is refunded whole or not at all)."""

RETURNED_SYSTEM = (
    "You read one sentence from a customer-support request. Answer Yes only if the sentence "
    "says the item has already been sent back to us or has reached us; otherwise No."
)
RETURNED_EXAMPLES = (
    Example("Sentence: The lamp from O2210 came back to our warehouse yesterday.", "yes"),
    Example("Sentence: Refund O3301, the toaster arrived broken.", "no"),
    Example("Sentence: customer already shipped the broken speaker back to us", "yes"),
    Example("Sentence: She will return the damaged chair next week.", "no"),
    Example("Sentence: the fan has been sent back to us.", "yes"),
    Example("Sentence: The mug came chipped, check our rules first.", "no"),
    Example("Sentence: Deal with the refund.", "no"),
    Example("Sentence: We have the returned kettle here now.", "yes"),
)
"""Asked of one clause at a time, beside ``WHERE_SYSTEM``: over a whole request the 1.5B
model answered yes to nearly every damaged-item request (8 of 14 right on requests written to
measure it, 4 confident wrong yeses); clause by clause 13 of 14, but "asks for a refund
because it arrived damaged" still read as a yes (docs/benchmarks.md, §8)."""
WHERE_SYSTEM = (
    "You read one sentence from a customer-support request. Where is the item now, as the "
    "sentence tells it? Answer with one letter."
)
WHERE_OPTIONS = (
    Option("customer", "With the customer: it was delivered to them (damaged or not), or they "
                       "still have it"),
    Option("us", "Sent back by the customer to us, or received back by us"),
    Option("unsaid", "The sentence does not say"),
)
WHERE_EXAMPLES = (
    Example("Sentence: The lamp from O2210 came back to our warehouse yesterday.", "us"),
    Example("Sentence: Refund O3301, the toaster arrived broken.", "customer"),
    Example("Sentence: customer already shipped the broken speaker back to us", "us"),
    Example("Sentence: She will return the damaged chair next week.", "customer"),
    Example("Sentence: Deal with the refund.", "unsaid"),
    Example("Sentence: the fan has been sent back to us.", "us"),
    Example("Sentence: Her order O4417 arrived with a cracked screen.", "customer"),
    Example("Sentence: We have the returned kettle here now.", "us"),
)
"""The same fact as a choice of where the item is: it never chose "us" for a clause that
does not say so, but misses some that do; the item counts as back only where both forms
agree (no wrong yes on 30 requests; docs/benchmarks.md, §8)."""
_CLAUSE_END = re.compile(r"(?<=[.!?;])\s+|\s+[-–—]+\s+|,\s+(?=\w+\s)")
"""Where a request is cut into clauses: sentence ends, semicolons, dashes, commas before a
word (punctuation only; the words are the model's to read)."""


def clauses(request: str) -> list[str]:
    """The request's clauses, each whitespace-normalised (the whole request if it has one)."""
    parts = [p.strip() for p in _CLAUSE_END.split(" ".join(request.split()))]
    return [p for p in parts if p] or [" ".join(request.split())]


@dataclass(frozen=True)
class Reading:
    """One answer of the model about the request, as the flow keeps it in its state."""

    choice: str
    """The chosen option's key."""
    p: float
    """The model's probability of that choice (1.0 when read from a scripted reply)."""
    form: str
    """How it was read: likelihood, parsed or default."""
    scores: dict[str, float] = field(default_factory=dict)
    """Every option's probability (likelihood form only)."""

    @classmethod
    def of(cls, judgment: Judgment) -> Reading:
        scores = {k: round(v, 4) for k, v in judgment.scores.items()}
        return cls(judgment.choice, round(judgment.confidence, 4), judgment.form, scores)

    def as_state(self) -> dict[str, Any]:
        return {"choice": self.choice, "p": self.p, "form": self.form, "scores": self.scores}

    @classmethod
    def from_state(cls, raw: dict[str, Any]) -> Reading:
        scores = {str(k): float(v) for k, v in (raw.get("scores") or {}).items()}
        return cls(str(raw["choice"]), float(raw["p"]), str(raw["form"]), scores)

    def of_key(self, key: str) -> float:
        """The probability of ``key`` (for a reply read as text: 1 for the choice, else 0)."""
        if self.scores:
            return self.scores.get(key, 0.0)
        return self.p if key == self.choice else 0.0

    def sure(self, choice: str) -> bool:
        """Whether the model chose ``choice`` confidently enough to act on it."""
        return self.choice == choice and self.p >= CONFIDENT

    def leads(self, choice: str, over: str, margin: float) -> bool:
        """Whether ``choice`` is the answer and beats option ``over`` by ``margin`` at least."""
        return self.choice == choice and self.of_key(choice) - self.of_key(over) >= margin


def question(request: str, about: Sequence[str] = ()) -> str:
    """The request as every question shows it, with the tickets' words when asked for."""
    text = f"Request: {' '.join(request.split())}"
    return text + "".join(f"\nTicket: {' '.join(a.split())}" for a in about if a.strip())


async def ask_intent(model: BaseChatModel, request: str, config: Any = None) -> Reading:
    """What the request asks the agent to do (unreadable reply: information only)."""
    return Reading.of(await choose(model, INTENT_SYSTEM, question(request), INTENT_OPTIONS,
                                   examples=INTENT_EXAMPLES, default="info", config=config))


async def ask_forbids(model: BaseChatModel, request: str, config: Any = None) -> Reading:
    """Whether the request forbids changing anything (unreadable reply: it does)."""
    return Reading.of(await yes_no(model, FORBIDS_SYSTEM, question(request),
                                   examples=FORBIDS_EXAMPLES, default=True, config=config))


async def ask_reason(
    model: BaseChatModel, request: str, about: Sequence[str], config: Any = None
) -> Reading:
    """Why the customer wants the refund, from the request and their tickets' words."""
    return Reading.of(await choose(model, REASON_SYSTEM, question(request, about),
                                   REASON_OPTIONS, examples=REASON_EXAMPLES, default="other",
                                   config=config))


async def ask_status(model: BaseChatModel, request: str, config: Any = None) -> Reading:
    """Which status the request wants its ticket set to (unreadable reply: pending, the one a
    wrong guess harms least; ``STATUS_CONFIDENT`` guards acting on it)."""
    return Reading.of(await choose(model, STATUS_SYSTEM, question(request), STATUS_OPTIONS,
                                   examples=STATUS_EXAMPLES, default="pending", config=config))


async def ask_item(
    model: BaseChatModel, request: str, items: Sequence[tuple[str, str]], config: Any = None
) -> Reading:
    """Which one item line (``(sku, name)`` pairs) the refund is for: the line whose yes is
    likelier than no (``ITEM_CONFIDENT``) and leads every other line's by ``ITEM_MARGIN``;
    ``"all"`` (the whole order, as with one line) when no line's is and none stands out
    (``ALL_MARGIN``); otherwise ``"unclear"``, so no refund is guessed. ``scores`` holds
    each line's probability of yes."""
    if len(items) < 2 or len(items) > MAX_ITEMS:
        return Reading("all", 1.0, "default")
    listed = "; ".join(" ".join(name.split()) for _, name in items)
    scores: dict[str, float] = {}
    form = "default"
    for sku, name in items:
        said = f"{question(request)}\nItems: {listed}\nThis item: {' '.join(name.split())}"
        judged = await yes_no(model, ITEM_SYSTEM, said, examples=ITEM_EXAMPLES, default=False,
                              config=config)  # fmt: skip
        scores[sku] = round(judged.p("yes"), 4)
        form = judged.form
    best = max(scores, key=lambda sku: scores[sku])
    rest = max(p for sku, p in scores.items() if sku != best)
    if scores[best] >= ITEM_CONFIDENT and scores[best] - rest >= ITEM_MARGIN:
        return Reading(best, scores[best], form, scores)
    if scores[best] < ITEM_CONFIDENT and scores[best] - rest < ALL_MARGIN:
        return Reading("all", round(1 - scores[best], 4), form, scores)
    return Reading("unclear", round(scores[best] - rest, 4), form, scores)


async def ask_returned(model: BaseChatModel, request: str, config: Any = None) -> Reading:
    """Whether the item is already back: the first clause for which both questions say so
    (yes with ``CONFIDENT`` and the choice "sent back to us") answers yes; otherwise no,
    with the likeliest yes of any clause for the record (unreadable replies: not back)."""
    best: Reading | None = None
    for clause in clauses(request)[:MAX_CLAUSES]:
        said = f"Sentence: {clause}"
        reading = Reading.of(await yes_no(model, RETURNED_SYSTEM, said,
                                          examples=RETURNED_EXAMPLES, default=False,
                                          config=config))  # fmt: skip
        if reading.sure("yes"):
            where = await choose(model, WHERE_SYSTEM, said, WHERE_OPTIONS,
                                 examples=WHERE_EXAMPLES, default="unsaid", config=config)
            if where.choice == "us":
                return reading
        if best is None or reading.of_key("yes") > best.of_key("yes"):
            best = reading
    assert best is not None  # clauses() is never empty
    if best.choice == "yes":  # sure of yes for no clause where the item is with us
        return Reading("no", round(1 - best.p, 4), best.form, best.scores)
    return best
