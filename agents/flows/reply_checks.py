"""Checks on a support reply drafted by the model, against what code knows.

The model drafts the reply before any action runs, from the records and policy quotes; a
0.5B model readily claims an action that did not run ("I have escalated the ticket"),
contradicts the eligibility code worked out from the order's dates, states a date, amount,
tracking number or order status the records do not show, or types a document mark for a
policy it never saw. Each check drops the sentences the records (read as fields, see
``tools.customer_records``) don't support; the support flow's report shows the records
themselves under the reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tools.customer_records import ID_PATTERNS, OrderRecord, Record, TicketRecord

__all__ = ["cited_only", "consistent", "refundable", "stated_only", "unclaimed"]

_DONE_FORMS = (
    r"(?:issued|processed|refunded|credited|escalated|updated|closed|reopened|assigned|"
    r"created|opened|sent|shipped|cancell?ed|approved|arranged|initiated|submitted|"
    r"forwarded|transferred|marked|set|resolved)"
)
_DO_FORMS = (
    r"(?:issue|process|refund|credit|escalate|update|close|reopen|assign|create|open|send|"
    r"ship|cancel|approve|arrange|initiate|submit|forward|transfer|mark|set|resolve)"
)
ACTION_CLAIM = re.compile(
    # the agent speaking: "I have issued", "we've escalated", "I refunded", "I will send",
    # "I'll escalate", "I am processing"
    rf"\b(?:I|we)(?:\s+(?:have|had|just|also))*\s+{_DONE_FORMS}\b|"
    rf"\b(?:I|we)\s*(?:'ve|'ll|'m|'re)\s+(?:\w+\s+)?(?:{_DONE_FORMS}|{_DO_FORMS}(?:ing)?)\b|"
    rf"\b(?:I|we)\s+(?:will|shall|am|are)\s+(?:going to\s+|now\s+|also\s+)?"
    rf"(?:{_DO_FORMS}|\w+ing)\b|"
    # this request's handling, passive: "the refund has been issued", "is being processed",
    # "will be escalated" (not the records' history: "was shipped", "has already been
    # refunded")
    rf"\b(?:has|have)\s+(?:now\s+|just\s+)?been\s+{_DONE_FORMS}\b|"
    rf"\b(?:is being|are being|will now be)\s+{_DONE_FORMS}\b|"
    rf"\bwill be\s+{_DONE_FORMS}\b(?!.*\b(?:once|if|after|when|unless|before)\b)",
    re.IGNORECASE,
)
"""A sentence saying this request's action was (or is being, or will be) taken: "I have
issued", "the ticket has been escalated", "I will send a label". Advice, policy and the
records' history ("an agent may issue", "it should be escalated", "refunds are issued
within", "the order was shipped", "it will be refunded once returned") are not claims."""
ACTION_KINDS = {
    "issue_refund": re.compile(r"\brefund\w*|\bcredit\w*|\bprocess\w*|\bissu\w*", re.I),
    "update_ticket": re.compile(
        r"\bescalat\w*|\bticket\b|\bupdat\w*|\bclos\w*|\breopen\w*|\bassign\w*|"
        r"\bteam lead\b|\bmarked\b|\bstatus\b|\bresolv\w*",
        re.I,
    ),
}
"""Which tool a claim is about, by its words; a claim about none of them (a label sent, a
replacement shipped) names an action no tool of this flow takes."""
_REPLY_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_DOC_MARK = re.compile(r"\s*\[([\w./-]+\.(?:md|markdown|txt))[^\]]*\]")


def unclaimed(reply: str, taken: set[str]) -> tuple[str, list[str]]:
    """``reply`` without the sentences claiming an action that did not run (``taken``: the
    tools that did), and the sentences dropped. The model drafts the reply before anything
    runs and a 0.5B model readily writes "I have escalated the ticket" when nothing was
    escalated: only the tool results decide what the answer says was done."""
    kept: list[str] = []
    dropped: list[str] = []
    for sentence in _REPLY_SENTENCE.split(reply.strip()):
        if ACTION_CLAIM.search(sentence):
            kinds = {tool for tool, rx in ACTION_KINDS.items() if rx.search(sentence)}
            if not kinds or not kinds <= taken:
                dropped.append(sentence)
                continue
        kept.append(sentence)
    return " ".join(kept).strip(), dropped


NOT_REFUNDABLE = re.compile(
    r"\b(?:not|isn't|is not|no longer) (?:eligible|refundable)\b|\bineligible\b|"
    r"\boutside (?:of )?the (?:\d+[- ]day )?(?:refund )?window\b",
    re.IGNORECASE,
)
REFUNDABLE = re.compile(
    r"\b(?:is|are|remains?|still) (?:(?!not\b|never\b|no\b)\w+ )?eligible\b|"
    r"\bcan (?:still )?(?:be refunded|refund|issue (?:a|the) refund)\b|"
    r"\binside (?:of )?the (?:\d+[- ]day )?(?:refund )?window\b|\bwithin the (?:\d+[- ]day )?"
    r"(?:refund )?window\b",
    re.IGNORECASE,
)


def refundable(records: Sequence[Record]) -> bool | None:
    """Whether the looked-up order is eligible for a refund, as code worked it out from its
    dates and status (``RefundVerdict.eligible``); None when that is not a plain yes or no
    (no order or several, a refund above the agent limit or a second one: a team lead's call)."""
    verdicts = {r.verdict.eligible for r in records if isinstance(r, OrderRecord)}
    return verdicts.pop() if len(verdicts) == 1 else None


def consistent(reply: str, records: Sequence[Record]) -> tuple[str, list[str]]:
    """``reply`` without the sentences that contradict the refund verdict code worked out
    from the records (a 0.5B model calls an order 15 days after delivery "not eligible"),
    and the sentences dropped; the records, shown under the reply, state the verdict."""
    verdict = refundable(records)
    if verdict is None:
        return reply.strip(), []
    wrong = NOT_REFUNDABLE if verdict else REFUNDABLE
    kept: list[str] = []
    dropped: list[str] = []
    for sentence in _REPLY_SENTENCE.split(reply.strip()):
        (dropped if wrong.search(sentence) else kept).append(sentence)
    return " ".join(kept).strip(), dropped


# -- facts a reply states: amounts, dates, tracking numbers, statuses -------------------------

_AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{1,2})?)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_NAMED_DATE = re.compile(
    rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b|"
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?\b",
    re.IGNORECASE,
)
_TRACKING = re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{10,}\b")
"""A carrier tracking number's shape (letters and digits, ten or more)."""
_ORDER_SAID = re.compile(
    r"\b(?:is|was|has been|have been|had been|got)\s+(?:now\s+|already\s+|just\s+|still\s+)?"
    r"(delivered|shipped|dispatched|cancell?ed|processing|pending|in transit|on (?:its|the) way)\b|"
    r"\b(arrived)\b|"
    r"\b(?:has not|hasn't|have not|haven't|was not|wasn't|is not|isn't|not yet|never)\s+"
    r"(?:yet\s+)?(?:been\s+)?(delivered|shipped|dispatched|arrived)\b",
    re.IGNORECASE,
)
"""A sentence saying what became of an order (the DB's statuses, and their usual words)."""
_TICKET_SAID = re.compile(
    r"\b(T\d{3})\b[^.!?]*?\b(?:is|was|has been)\s+(?:now\s+|already\s+|still\s+)?"
    r"(open|pending|escalated|resolved|closed)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:has not|hasn't|have not|haven't|was not|wasn't|is not|isn't|not yet|never)\b", re.I)
_CONTRADICTS: dict[str, frozenset[str]] = {
    "delivered": frozenset({"pending", "processing", "shipped", "cancelled"}),
    "shipped": frozenset({"pending", "processing", "cancelled"}),
    "cancelled": frozenset({"pending", "processing", "shipped", "delivered", "returned"}),
    "processing": frozenset({"shipped", "delivered", "cancelled", "returned"}),
    "in transit": frozenset({"pending", "processing", "delivered", "cancelled", "returned"}),
    "not delivered": frozenset({"delivered", "returned"}),
    "not shipped": frozenset({"shipped", "delivered", "returned"}),
}
"""A claimed order status -> the recorded statuses it contradicts."""


def _cents(text: str) -> int:
    return round(float(text.replace(",", "")) * 100)


def _dates(sentence: str) -> list[tuple[str | None, str]]:
    """The dates a sentence states, as (year or None, "MM-DD")."""
    found: list[tuple[str | None, str]] = [
        (y, f"{m}-{d}") for y, m, d in _ISO_DATE.findall(sentence)
    ]
    for m in _NAMED_DATE.finditer(sentence):
        month = m.group(1) or m.group(5)
        day = m.group(2) or m.group(4)
        year = m.group(3) or m.group(6)
        index = next((i for i, name in enumerate(_MONTHS) if name.startswith(month.lower()[:3])), None)
        if index is None or not 1 <= int(day) <= 31:
            continue
        found.append((year, f"{index + 1:02d}-{int(day):02d}"))
    return found


def _claimed_status(match: re.Match[str], sentence: str) -> str:
    said = (match.group(1) or match.group(2) or match.group(3) or "").lower()
    said = {"dispatched": "shipped", "canceled": "cancelled", "arrived": "delivered",
            "pending": "processing", "on its way": "in transit",
            "on the way": "in transit"}.get(said, said)  # fmt: skip
    if match.group(3) or (match.group(2) and _NEGATED.search(sentence[: match.start()][-30:])):
        return f"not {said}" if said in ("delivered", "shipped") else said
    return said


def stated_only(
    reply: str, records: Sequence[Record], policy: Sequence[str] = (), ours: Sequence[str] = (),
    changed: Iterable[str] = (),
) -> tuple[str, list[str]]:
    """``reply`` without the sentences stating an order status, date, amount or tracking
    number the records do not show, and the sentences dropped.

    Known: what the looked-up records state (their fields), amounts and dates in the
    policy passages shown (``policy``) and in what code itself wrote (``ours``: the planned
    action, the actions' results). A status is checked against the order or ticket the
    sentence names (or the only one looked up); ``changed``: records an action changed since
    the lookup (their status is not checked)."""
    amounts: set[int] = set()
    dates: set[str] = set()
    tracking = {r.tracking for r in records if isinstance(r, OrderRecord) and r.tracking}
    for r in records:
        amounts |= set(r.amounts)
        dates |= set(r.dates)
    for text in [*policy, *ours]:
        amounts |= {_cents(a) for a in _AMOUNT.findall(text)}
        dates |= {f"{y}-{m}-{d}" for y, m, d in _ISO_DATE.findall(text)}
    month_days = {d[5:] for d in dates}
    orders = {r.id: r for r in records if isinstance(r, OrderRecord)}
    tickets = {r.id: r for r in records if isinstance(r, TicketRecord)}
    skip = set(changed)
    kept: list[str] = []
    dropped: list[str] = []
    for sentence in _REPLY_SENTENCE.split(reply.strip()):
        if _contradicts(sentence, amounts, dates, month_days, tracking, orders, tickets, skip):
            dropped.append(sentence)
        else:
            kept.append(sentence)
    return " ".join(kept).strip(), dropped


def _contradicts(
    sentence: str, amounts: set[int], dates: set[str], month_days: set[str], tracking: set[str],
    orders: dict[str, OrderRecord], tickets: dict[str, TicketRecord], skip: set[str],
) -> bool:
    if any(_cents(a) not in amounts for a in _AMOUNT.findall(sentence)):
        return True
    for year, month_day in _dates(sentence):
        if (f"{year}-{month_day}" not in dates) if year else (month_day not in month_days):
            return True
    if any(t not in tracking and not _is_id(t) for t in _TRACKING.findall(sentence)):
        return True
    named = [orders[o] for o in ID_PATTERNS["order"].findall(sentence) if o in orders]
    if not named and len(orders) == 1 and not ID_PATTERNS["ticket"].search(sentence):
        named = list(orders.values())
    for match in _ORDER_SAID.finditer(sentence):
        claim = _claimed_status(match, sentence)
        if any(o.id not in skip and o.status in _CONTRADICTS.get(claim, frozenset())
               for o in named):  # fmt: skip
            return True
    for tid, status in _TICKET_SAID.findall(sentence):
        ticket = tickets.get(tid.upper())
        if ticket is not None and ticket.id not in skip and ticket.status != status.lower():
            return True
    return False


def _is_id(token: str) -> bool:
    return any(rx.fullmatch(token) for rx in ID_PATTERNS.values())


def cited_only(reply: str, paths: set[str]) -> str:
    """``reply`` without the document marks it typed itself (``[refund-policy.md]``) for
    documents that were not retrieved: a source the records don't show is never claimed."""
    return _DOC_MARK.sub(lambda m: m.group(0) if m.group(1) in paths else "", reply)
