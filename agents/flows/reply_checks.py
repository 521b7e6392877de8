"""Checks on a support reply drafted by the model, against what code knows.

The model drafts the reply before any action runs, from the records and policy quotes; a
0.5B model readily claims an action that did not run ("I have escalated the ticket"),
contradicts the eligibility code worked out from the order's dates, or types a document
mark for a policy it never saw. Each check drops what the records don't support; the
support flow's report shows the records themselves under the reply.
"""

from __future__ import annotations

import re

__all__ = ["cited_only", "consistent", "refundable", "unclaimed"]

_DONE_FORMS = (
    r"(?:issued|processed|refunded|credited|escalated|updated|closed|reopened|assigned|"
    r"created|opened|sent|shipped|cancell?ed|approved|arranged|initiated|submitted|"
    r"forwarded|transferred|marked|set)"
)
_DO_FORMS = (
    r"(?:issue|process|refund|credit|escalate|update|close|reopen|assign|create|open|send|"
    r"ship|cancel|approve|arrange|initiate|submit|forward|transfer|mark|set)"
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
        r"\bteam lead\b|\bmarked\b|\bstatus\b",
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


_INELIGIBLE = re.compile(r"outside the \d+-day refund window|has not shipped|was cancelled")


def refundable(records: list[str]) -> bool | None:
    """Whether the looked-up order is eligible for a refund, as code worked it out from its
    dates and status (``tools.refund_rules``); None when that is not a plain yes or no (no
    order or several, a refund above the agent limit or a second one: a team lead's call)."""
    verdicts: set[bool | None] = set()
    for record in records:
        for line in (r.strip() for r in record.splitlines()):
            if not line.startswith("Refund by agent:"):
                continue
            if line.startswith("Refund by agent: up to"):
                verdicts.add(None if "agent limit" in line else True)
            else:
                verdicts.add(False if _INELIGIBLE.search(line) else None)
    return verdicts.pop() if len(verdicts) == 1 else None


def consistent(reply: str, records: list[str]) -> tuple[str, list[str]]:
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


def cited_only(reply: str, paths: set[str]) -> str:
    """``reply`` without the document marks it typed itself (``[refund-policy.md]``) for
    documents that were not retrieved: a source the records don't show is never claimed."""
    return _DOC_MARK.sub(lambda m: m.group(0) if m.group(1) in paths else "", reply)
