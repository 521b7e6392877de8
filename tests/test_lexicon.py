"""The text lexicon used for retrieval: terms, and record ids matched by their kind."""

from __future__ import annotations

from core.lexicon import TermIndex, terms


def test_terms_stem_words_and_keep_record_ids_by_kind() -> None:
    assert terms("Refunds were refunded for T508 and O1001 (C7 stays a word)") == [
        "refund", "refund", "t#", "o#", "c7", "stay", "word",
    ]


def test_goals_about_the_same_kind_of_record_meet() -> None:
    """A goal about some ticket shares the ticket's kind with the examples about tickets even
    when it shares no other word with them (other ids used to match nothing)."""
    index = TermIndex([
        "Write a function that parses durations, with tests.",
        "Close T900, the customer confirmed the fix worked.",
        "Where is order O1234? The customer keeps asking.",
    ])
    coding, ticket, order = index.scores("C008 is happy now: T508 can be marked as solved.")
    assert ticket > 0 and ticket > order and coding == 0
