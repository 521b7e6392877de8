"""Which form of question the embedded model answers best about a support request.

Twenty requests written for this benchmark (informal, indirect, typos, other languages; not
requests of any evaluation set), each labelled with what it asks (information, a refund, an
escalation), whether it forbids changing anything, why a refund is wanted and whether the
item is back. Three forms are asked of the model for the same decisions:

- ``choice``: the support flow's own questions (``agents.flows.support_questions``): labelled
  options for the intent and the reason, yes/no for the rest, read as token likelihoods;
- ``yes_no``: the intent and the reason as separate yes/no questions (refund? escalate?
  damaged? our error?), combined by code;
- ``json``: one constrained JSON object with every field (``ainvoke_structured``).

Reports accuracy per decision and seconds per decision (wall time of its model calls).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.support_questions [--model local]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.flows import support_questions as q
from core.models import ainvoke_structured
from core.models.factory import achat_model
from core.models.judgment import Example, yes_no
from core.settings import load_settings


@dataclass(frozen=True)
class Case:
    request: str
    intent: str
    forbids: str
    reason: str | None = None
    returned: str | None = None
    status: str | None = None
    items: tuple[str, ...] = ()
    """The order's item lines, for the partial-refund question."""
    item: str | None = None
    """The item the refund is for, or "all" (the whole order)."""


CASES = [
    Case("hey can u tell me if O1006 is still inside the refund window?", "info", "no"),
    Case("Customer C004 would like his money back for O1008, he just doesn't like the sound. "
         "Please refund what policy allows.", "refund", "no", "other"),
    Case("O1015 earbud case came cracked, customer C008 wants refund, go ahead and issue it",
         "refund", "no", "damaged", "no"),
    Case("Please escalate T509 to a team lead, the customer has waited four days", "escalate", "no"),
    Case("what's the status of ticket T504?", "info", "no"),
    Case("Can we refund order O1017? Only tell me the rules, don't touch anything.", "info", "yes"),
    Case("refnd O1016 plz, keybaord arrived with broken keys, its already back in our warehouse",
         "refund", "no", "damaged", "yes"),
    Case("Kundin C005 hat die Kopfhörer von O1010 nicht mehr gebraucht, bitte Geld erstatten.",
         "refund", "no", "other"),
    Case("The monitor for O1017 was the wrong model, we sent the 24 inch. Issue the refund.",
         "refund", "no", "our_error"),
    Case("T506 is a safety issue, hand it to a manager right away", "escalate", "no"),
    Case("Tell me how long a refund takes to reach the card for O1001", "info", "no"),
    Case("Don't refund yet, just check whether O1019 could get another refund and explain.",
         "info", "yes"),
    Case("Package for O1014 never arrived, customer wants the money back; process it.",
         "refund", "no", "our_error"),
    Case("Escalation needed? T503, just advise, do not change the ticket.", "info", "yes"),
    Case("C009 changed her mind about the monitor in O1017 and sent it back unopened, refund her",
         "refund", "no", "other"),
    Case("pls give C001 a refund on O1001, hedphones dead on arival", "refund", "no", "damaged", "no"),
    Case("Is the warranty on the Laptop 14 from O1020 still valid?", "info", "no"),
    Case("Por favor, escalate ticket T501 al team lead, el cliente está molesto", "escalate", "no"),
    Case("The speaker O1002 is fine, customer only asks what our return policy says", "info", "no"),
    Case("Go ahead and refund O1006 in full, the charger was faulty and the customer returned it "
         "yesterday", "refund", "no", "damaged", "yes"),
    # A question and an action in one request; ticket updates other than escalation.
    Case("How many days do refunds take to show up on a card? And refund O1014 please, the "
         "parcel never came.", "refund", "no", "our_error"),
    Case("Is the headset from O1010 still returnable? She doesnt need it, so if yes refund her.",
         "refund", "no", "other"),
    Case("Customer on T504 confirmed the fix works. Mark the ticket resolved.", "status", "no",
         status="resolved"),
    Case("T508 is sorted now, pls set it to resolved and tell me what it was about", "status", "no",
         status="resolved"),
    Case("Explain what our warranty covers for O1020, and push T510 up to a team lead.",
         "escalate", "no"),
    Case("Has T503 been resolved yet? Only tell me, don't touch it.", "info", "yes"),
    Case("What does our policy say about cracked cases? Issue the refund for O1015 too, it "
         "arrived cracked.", "refund", "no", "damaged", "no"),
    Case("When will T502 be resolved? just curious", "info", "no"),
    # Status changes other than escalation: which status is meant.
    Case("C010 still owes us the battery log, so set T509 to pending until it comes in.",
         "status", "no", status="pending"),
    Case("T505 has to be reopened - the customer says she was charged after all.", "status",
         "no", status="open"),
    Case("T507 duplicates a newer ticket, just close it; nothing left to do there.", "status",
         "no", status="closed"),
    Case("What does the warranty say about batteries? And T509 is waiting on the customer's "
         "log, mark it that way.", "status", "no", status="pending"),
    Case("is T504 still pending? dont change it, just look", "info", "yes"),
    # Partial refunds: which item line of a multi-item order (or all of it).
    Case("the cable from O1015 arrived dead, refund it for C008", "refund", "no", "damaged",
         items=("Earbuds Lite", "USB-C Cable 2m"), item="USB-C Cable 2m"),
    Case("Refund O1015 for C008, the parcel arrived soaked and everything in it is ruined",
         "refund", "no", "damaged", items=("Earbuds Lite", "USB-C Cable 2m"), item="all"),
    Case("C006 doesn't need the mouse he ordered with the laptop (O1011) - refund that one",
         "refund", "no", "other", items=("Laptop 14", "Wireless Mouse"), item="Wireless Mouse"),
    Case("pls refund the earbuds on O1015, they stopped charging after a day", "refund", "no",
         "damaged", items=("Earbuds Lite", "USB-C Cable 2m"), item="Earbuds Lite"),
    Case("O1006: the charger is faulty, give her the money back for it", "refund", "no",
         "damaged", items=("65W USB-C Charger", "USB-C Cable 2m"), item="65W USB-C Charger"),
    Case("money back for the whole of O1013 please, she does not want any of it anymore",
         "refund", "no", "other", items=("Smartwatch 3", "65W USB-C Charger"), item="all"),
    Case("the keyboard in O1005 has a dead key, refund the keyboard", "refund", "no", "damaged",
         items=("Mechanical Keyboard 75%", "Wireless Mouse"), item="Mechanical Keyboard 75%"),
    Case("C002's tablet from O1003 shows dead pixels; refund it", "refund", "no", "damaged",
         items=("Tablet 11 Pro", "USB-C Cable 2m"), item="Tablet 11 Pro"),
    Case("O1006: one of the cables frays already, refund that cable", "refund", "no", "damaged",
         items=("65W USB-C Charger", "USB-C Cable 2m"), item="USB-C Cable 2m"),
    Case("refund O1013 for C007, she changed her mind", "refund", "no", "other",
         items=("Smartwatch 3", "65W USB-C Charger"), item="all"),
]

# -- the yes/no form of the intent and the reason ---------------------------------------------

ASKS_SYSTEM = ("You read customer-support requests sent to a support agent. Answer Yes or No "
               "about what the request asks the agent to DO now.")
REFUND_Q = "Does it ask the agent to issue a refund now (not only whether one is possible)?"
ESCALATE_Q = "Does it ask the agent to escalate the ticket to a team lead or manager?"
DAMAGED_Q = "Does the customer say the item is damaged, broken or defective?"
ERROR_Q = "Does the customer say we made a mistake: wrong item, something missing, or it never arrived?"


def _examples(question: str, pairs: list[tuple[str, str]]) -> list[Example]:
    return [Example(f"{q.question(r)}\n{question}", a) for r, a in pairs]


REFUND_EX = _examples(REFUND_Q, [(e.question.removeprefix("Request: "), "yes" if e.answer == "refund" else "no")
                                 for e in q.INTENT_EXAMPLES])
ESCALATE_EX = _examples(ESCALATE_Q, [(e.question.removeprefix("Request: "), "yes" if e.answer == "escalate" else "no")
                                     for e in q.INTENT_EXAMPLES])
DAMAGED_EX = _examples(DAMAGED_Q, [(e.question.removeprefix("Request: "), "yes" if e.answer == "damaged" else "no")
                                   for e in q.REASON_EXAMPLES])
ERROR_EX = _examples(ERROR_Q, [(e.question.removeprefix("Request: "), "yes" if e.answer == "our_error" else "no")
                               for e in q.REASON_EXAMPLES])


async def yes_no_intent(model: BaseChatModel, request: str) -> str:
    refund = await yes_no(model, ASKS_SYSTEM, f"{q.question(request)}\n{REFUND_Q}", examples=REFUND_EX)
    escalate = await yes_no(model, ASKS_SYSTEM, f"{q.question(request)}\n{ESCALATE_Q}", examples=ESCALATE_EX)
    if max(refund.p("yes"), escalate.p("yes")) < 0.5:
        return "info"
    return "refund" if refund.p("yes") >= escalate.p("yes") else "escalate"


async def yes_no_reason(model: BaseChatModel, request: str) -> str:
    damaged = await yes_no(model, ASKS_SYSTEM, f"{q.question(request)}\n{DAMAGED_Q}", examples=DAMAGED_EX)
    error = await yes_no(model, ASKS_SYSTEM, f"{q.question(request)}\n{ERROR_Q}", examples=ERROR_EX)
    if max(damaged.p("yes"), error.p("yes")) < 0.5:
        return "other"
    return "damaged" if damaged.p("yes") >= error.p("yes") else "our_error"


# -- the constrained-JSON form ----------------------------------------------------------------


class RequestReading(BaseModel):
    """What a support request means."""

    intent: Literal["info", "refund", "escalate"] = Field(
        description="What the request asks the agent to do now: info (answer/check only), "
        "refund (issue a refund), escalate (pass the ticket to a team lead)")
    forbids: bool = Field(description="The request tells the agent not to change anything")
    reason: Literal["damaged", "our_error", "other"] = Field(
        description="Why a refund is wanted: damaged/defective, our error (wrong, missing, "
        "never arrived), or other (changed mind, none given)")
    returned: bool = Field(description="The request says the item is already back with us")


JSON_SYSTEM = ("You read customer-support requests sent to a support agent and fill in what "
               "the request means. Asking whether something is possible, or to check and "
               "explain, is intent info.")


def _last(rows: dict[str, dict[str, list[tuple[bool, float]]]]) -> dict[str, Any]:
    """Progress: each form's decisions so far (correct, seconds)."""
    return {f: {d: [sum(ok for ok, _ in v), len(v), round(sum(t for _, t in v), 1)]
                for d, v in ds.items()} for f, ds in rows.items()}


async def timed(coro: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = await coro
    return value, time.perf_counter() - start


async def main(
    model_name: str, json_cases: int, choice_only: bool = False, only: str = ""
) -> dict[str, Any]:
    settings = load_settings(model=model_name)
    model = await achat_model(settings, "support")
    await q.ask_intent(model, "warm up")  # the server starts and caches the system prompts
    rows: dict[str, dict[str, list[tuple[bool, float]]]] = {
        form: {d: [] for d in ("intent", "forbids", "reason", "returned", "status", "item")}
        for form in ("choice", "yes_no", "json")
    }
    for n, case in enumerate(CASES):
        if only and not getattr(case, only):
            continue
        r = case.request
        intent, t = await timed(q.ask_intent(model, r))
        rows["choice"]["intent"].append((intent.choice == case.intent, t))
        forbids, t = await timed(q.ask_forbids(model, r))
        rows["choice"]["forbids"].append(((forbids.choice == "yes") == (case.forbids == "yes"), t))
        if case.reason:
            reason, t = await timed(q.ask_reason(model, r, ()))
            rows["choice"]["reason"].append((reason.choice == case.reason, t))
        if case.returned:
            back, t = await timed(q.ask_returned(model, r))
            rows["choice"]["returned"].append(((back.choice == "yes") == (case.returned == "yes"), t))
        detail: dict[str, Any] = {}
        if case.status:
            status, t = await timed(q.ask_status(model, r))
            detail["status"] = [status.choice, round(status.p, 3), case.status]
            ok = status.choice == case.status and status.p >= q.STATUS_CONFIDENT
            rows["choice"]["status"].append((ok, t))
        if case.item:
            lines = [(name, name) for name in case.items]
            item, t = await timed(q.ask_item(model, r, lines))
            rows["choice"]["item"].append((item.choice == case.item, t))
            detail["item"] = [item.choice, item.scores, case.item]
        if choice_only:
            print(json.dumps({"case": n, "intent": intent.choice, "want": case.intent,
                              "p": round(intent.p, 3), **detail}), file=sys.stderr, flush=True)
            continue
        yn_intent, t = await timed(yes_no_intent(model, r))
        rows["yes_no"]["intent"].append((yn_intent == case.intent, t))
        rows["yes_no"]["forbids"] = rows["choice"]["forbids"]  # the same question in both forms
        rows["yes_no"]["returned"] = rows["choice"]["returned"]
        if case.reason:
            yn_reason, t = await timed(yes_no_reason(model, r))
            rows["yes_no"]["reason"].append((yn_reason == case.reason, t))
        if n >= json_cases:
            print(json.dumps({"case": n, "rows": _last(rows)}), file=sys.stderr, flush=True)
            continue
        try:
            got, t = await timed(ainvoke_structured(
                model, RequestReading,
                [SystemMessage(JSON_SYSTEM), HumanMessage(q.question(r))], attempts=2))
            value = got.value
        except Exception:  # a reply that never validated counts as wrong on every field
            value, t = None, 0.0
        per = t / (2 + bool(case.reason) + bool(case.returned))  # one call answers every field
        rows["json"]["intent"].append((value is not None and value.intent == case.intent, per))
        rows["json"]["forbids"].append((value is not None and value.forbids == (case.forbids == "yes"), per))
        if case.reason:
            rows["json"]["reason"].append((value is not None and value.reason == case.reason, per))
        if case.returned:
            rows["json"]["returned"].append(
                (value is not None and value.returned == (case.returned == "yes"), per))
        print(json.dumps({"case": n, "rows": _last(rows)}), file=sys.stderr, flush=True)
    summary = {
        form: {d: {"n": len(v), "accuracy": round(sum(ok for ok, _ in v) / len(v), 3) if v else None,
                   "s_per_decision": round(sum(t for _, t in v) / len(v), 3) if v else None}
               for d, v in decisions.items()}
        for form, decisions in rows.items()
    }
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"), "model": model_name,
            "machine": f"{platform.processor() or platform.machine()}, {platform.node()}",
            "json_cases": min(json_cases, len(CASES)), "summary": summary}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local")
    parser.add_argument("--json-cases", type=int, default=len(CASES),
                        help="ask the constrained-JSON form of only the first N requests (it generates ~40 tokens each)")
    parser.add_argument("--choice-only", action="store_true",
                        help="ask only the support flow's own questions (the choice form)")
    parser.add_argument("--only", choices=["status", "item"], default="",
                        help="ask only the requests labelled for this decision")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.model, args.json_cases, args.choice_only, args.only)),
                     indent=2))
