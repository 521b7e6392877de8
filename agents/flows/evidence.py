"""Evidence by code: the lines of retrieved passages that bear on a request, quoted verbatim.

A 0.5B model drops most of the facts it is shown when it paraphrases. So the answers of the
researcher and the support agent carry the key lines of the passages they retrieved,
chosen by code (the lines that share the most terms with the request) and quoted with the
passage's citation; the model writes the connecting text around them. A quote is always a
line of a retrieved passage, never model text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TERM = re.compile(r"[a-z0-9][a-z0-9@/_+=.-]*[a-z0-9]|[a-z0-9]")
_SUFFIX = re.compile(r"(ations?|ation|ings?|ities|ity|ness|ments?|ed|es|ly|al|s)$")
STOP_WORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "about also and any are been both but can could does doing each for from had has have "
        "how into its just may more most much not now off once only other our out over per "
        "same should some such than that the their them then there these they this those too "
        "under until very was were what when where which while who whom why will with would "
        "you your using use used tell explain describe name named briefly short report write "
        "according based knowledge base documentation docs doc guide team give say says"
    ).split()
)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")
QUOTE_CHARS = 320
"""A quoted line longer than this is cut (at a word) and marked with an ellipsis."""


def stem(word: str) -> str:
    """A crude stem: enough to match "ranks"/"ranking", "durable"/"durability",
    "tools"/"tool"."""
    word = word.strip(".-/_")
    if len(word) > 5:
        word = _SUFFIX.sub("", word)
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:7]


_PART = re.compile(r"[-/]")


def terms(text: str) -> set[str]:
    """The content terms of ``text`` (stemmed, without stop words and one-letter words);
    a compound ("tool-safety", "full-text") also gives its parts, as the search index
    splits it."""
    found = set()
    for token in _TERM.findall(text.lower()):
        parts = [p for p in _PART.split(token) if p] if _PART.search(token) else []
        for word in [token, *parts]:
            if len(word) < 3 and not word.isdigit():
                continue
            if word in STOP_WORDS:
                continue
            found.add(stem(word))
    return found


def lines_of(text: str) -> list[str]:
    """A passage as quotable units: bullets (with their wrapped continuation lines), table
    rows and the sentences of paragraphs; headings are left out (the citation names them)."""
    units: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            units.append(" ".join(current))
            current.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or _TABLE_RULE.match(line):
            flush()
            continue
        if line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            units.append(", ".join(c for c in cells if c))
            continue
        if _BULLET.match(line):
            flush()
            current.append(_BULLET.sub("", line))
            continue
        current.append(line)
    flush()
    out: list[str] = []
    for unit in units:
        out += [s.strip() for s in _SENTENCE.split(unit) if s.strip()]
    return out


def _clip(line: str, limit: int = QUOTE_CHARS) -> str:
    if len(line) <= limit:
        return line
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def key_lines(text: str, query: str, n: int = 2, min_terms: int = 1) -> list[str]:
    """The ``n`` lines of ``text`` sharing the most terms with ``query`` (ties: earlier
    first), in their order in the passage; lines sharing fewer than ``min_terms`` are left
    out."""
    wanted = terms(query)
    scored = []
    for i, line in enumerate(lines_of(text)):
        shared = len(wanted & terms(line))
        if shared >= min_terms:
            scored.append((-shared, i, line))
    best = sorted(scored)[:n]
    return [_clip(line) for _, _, line in sorted(best, key=lambda s: s[1])]


PER_PASSAGE = (4, 3, 2, 2)
"""Lines quoted from the passages by rank: the best-ranked passage is the likeliest to hold
the answer, so more of it is shown."""
SECTION_LINES = 5
"""A passage whose heading shares a term with the request is about it: up to this many of
its lines are quoted, whether or not each line repeats the request's words."""
MAX_QUOTES = 12


def heading_of(passage: dict[str, str]) -> str:
    """The passage's section heading (from its citation ``[path#heading Lx-y]``)."""
    citation = passage.get("citation", "")
    return citation.split("#", 1)[1].rsplit(" L", 1)[0] if "#" in citation else ""


def quotes(
    passages: Iterable[dict[str, str]],
    query: str,
    per_rank: tuple[int, ...] = PER_PASSAGE,
    limit: int = MAX_QUOTES,
) -> list[tuple[str, str]]:
    """``(line, citation)`` for the key lines of each passage, in the passages' order,
    without repeating a line, at most ``limit``: a section about the request is quoted
    whole (up to ``SECTION_LINES``); otherwise the lines sharing terms with the request (one
    term in the best-ranked passage, two in the others, else its one best line: a passage
    was retrieved for the request, so it bears on it)."""
    wanted = terms(query)
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for rank, p in enumerate(passages):
        if wanted & terms(heading_of(p)):
            lines = key_lines(p["text"], query, SECTION_LINES, min_terms=0)
        else:
            n = per_rank[min(rank, len(per_rank) - 1)]
            lines = key_lines(p["text"], query, n, min_terms=1 if rank == 0 else 2)
            lines = lines or key_lines(p["text"], query, 1, min_terms=1)
        for line in lines:
            if line not in seen and len(found) < limit:
                seen.add(line)
                found.append((line, p["citation"]))
    return found


def quote_block(found: list[tuple[str, str]], title: str) -> str:
    """Quotes as the answer shows them: a titled list, each line with its citation."""
    if not found:
        return ""
    return "\n".join([title, *[f"- {line} {citation}" for line, citation in found]])
