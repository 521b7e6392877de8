"""The text lexicon: how prose becomes terms for matching, in one place.

Used where code compares texts by their words for *retrieval* (which stored plan examples are
nearest a goal, which passages match a query) — never to decide what a request means; that
is the model's judgment (``core.models.judgment``).

- ``STOP_WORDS``: English function words that carry no subject.
- ``stem``: a light suffix stripper, so "refunds", "refunded" and "refunding" meet.
- ``terms``: the stems of a text's content words, in order; a record id (T508, O1001) is
  its kind (``t#``, ``o#``), so goals about the same kind of record meet.
- ``TermIndex``: BM25 over a small set of documents (a few hundred plan examples).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["STOP_WORDS", "TermIndex", "stem", "terms"]

STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "out", "please", "should", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your"]
)
"""Function words skipped when a text becomes terms."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """``word`` lower-cased without its most common English inflection (light, no dictionary)."""
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            base = w[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return w


_RECORD_ID = re.compile(r"([A-Za-z]{1,3})\d{2,}")
"""A record id's shape: a short letter prefix and a number (T508, O1001, INV2023)."""


def term(word: str) -> str:
    """One word as a term: a record id becomes its kind ("T508" and "T900" are both "t#": two
    goals about a ticket are alike whichever ticket), any other word its stem."""
    if shape := _RECORD_ID.fullmatch(word):
        return shape.group(1).lower() + "#"
    return stem(word)


def terms(text: str) -> list[str]:
    """The terms of ``text``'s content words (stop words and one-letter words dropped)."""
    return [term(w) for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in STOP_WORDS]


class TermIndex:
    """BM25 over a fixed list of documents, rebuilt when the list changes (it is small)."""

    K1 = 1.2
    B = 0.75

    def __init__(self, documents: Sequence[str]) -> None:
        self._docs = [Counter(terms(d)) for d in documents]
        self._lengths = [sum(c.values()) for c in self._docs]
        self._avg = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        df: Counter[str] = Counter()
        for doc in self._docs:
            df.update(doc.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str | Iterable[str]) -> list[float]:
        """The BM25 score of every document for ``query`` (text, or terms already made)."""
        q = terms(query) if isinstance(query, str) else list(query)
        out = []
        for doc, length in zip(self._docs, self._lengths, strict=True):
            score = 0.0
            norm = self.K1 * (1 - self.B + self.B * length / self._avg) if self._avg else self.K1
            for t in set(q):
                f = doc.get(t, 0)
                if f:
                    score += self._idf[t] * f * (self.K1 + 1) / (f + norm)
            out.append(score)
        return out
