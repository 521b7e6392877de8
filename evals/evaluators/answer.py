"""Deterministic answer checks: the key facts a correct answer must state.

A fact is a phrase; ``|`` separates accepted spellings (``"30 days|thirty days"``).
Matching ignores case, repeated whitespace, Markdown emphasis, currency signs, thousands
separators and a trailing ``.00`` (``$1,299.00`` matches ``1299``) and allows a plural
``s`` after a word (``checkpoint`` matches ``checkpoints``). Cheap and model-free: a
useful signal next to the LLM judge, especially when the judge is a small local model.
"""

from __future__ import annotations

import re
from typing import Any

from evals.evaluators.base import Score, Scores, not_applicable, score, section


def normalize(text: str) -> str:
    """Lowercase, collapse whitespace, drop currency signs, thousands separators and ``.00``."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"(?<=\d)\.00\b", "", text)
    text = re.sub(r"[*_`$€£]", "", text)  # Markdown emphasis, currency signs
    return re.sub(r"\s+", " ", text)


def mentions(text: str, fact: str) -> bool:
    """Whether ``text`` states ``fact`` (any of its ``|``-separated spellings)."""
    body = normalize(text)
    for option in fact.split("|"):
        needle = normalize(option.strip())
        if not needle:
            continue
        # Word boundaries where the phrase starts/ends with a word character ("O1001" is not
        # found in "O10011"); a trailing plural s/es is allowed ("checkpoint" ~ "checkpoints").
        start = r"\b" if needle[0].isalnum() else ""
        end = r"(?:e?s)?\b" if needle[-1].isalpha() else r"\b" if needle[-1].isalnum() else ""
        pattern = start + re.escape(needle) + end
        if re.search(pattern, body):
            return True
    return False


def key_facts(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Scores | Score:
    """Evaluator ``key_facts``: share of the reference ``key_facts`` the answer states; with
    ``forbidden`` phrases also ``no_forbidden`` (1 when the answer states none of them)."""
    facts = [str(f) for f in section(reference_outputs, "key_facts") or []]
    forbidden = [str(f) for f in section(reference_outputs, "forbidden") or []]
    if not facts and not forbidden:
        return not_applicable("key_facts", "the example lists no key facts")
    answer = str((outputs or {}).get("answer") or "")
    results = []
    if facts:
        missing = [f for f in facts if not mentions(answer, f)]
        results.append(
            score(
                "key_facts",
                round(1 - len(missing) / len(facts), 4),
                f"missing: {'; '.join(missing)}" if missing else "all stated",
            )
        )
    if forbidden:
        said = [f for f in forbidden if mentions(answer, f)]
        results.append(
            score("no_forbidden", not said, f"states: {'; '.join(said)}" if said else "none stated")
        )
    return Scores(results=results)
