"""Judgments: what a request means, asked of the model in a form a small model answers well.

A 0.5B–1.5B model cannot be trusted with an open question ("plan this goal") but answers a
closed one reliably when it is shown worked examples: a choice among a few labelled options,
or yes/no. This module asks such questions and reads the answer as a probability:

- ``likelihood`` (the default, where the backend returns token log-probabilities: llama.cpp's
  server and OpenAI do): one completion token, the options' label tokens read from
  ``top_logprobs`` and normalised over the options. No sampling, no parsing, and a
  confidence the caller can act on (ask a human, escalate, take the safer option).
- ``parsed``: where no log-probabilities come back (a scripted test model, some endpoints),
  the reply's first word is matched to a label; an unmatched reply falls back to the
  caller's ``default``.

Worked examples go in as earlier conversation turns (question, then the answer label), the
format a chat model imitates most faithfully; the system message stays byte-identical across
calls of one kind of question, so the server's prompt cache serves it.

Code decides what follows from the answer (policy, bookkeeping); this module only asks.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

__all__ = ["Example", "Judgment", "Option", "choose", "yes_no"]

Form = Literal["likelihood", "parsed", "default"]
TOP_LOGPROBS = 20
"""How many alternatives the backend lists for the answer token (OpenAI's maximum)."""


@dataclass(frozen=True)
class Option:
    """One answer the model may give."""

    key: str
    """What the caller gets back when this option is chosen."""
    text: str
    """The option as the model reads it, after its label."""


@dataclass(frozen=True)
class Example:
    """A worked example: a question of the same kind and the key of its right answer."""

    question: str
    """The example's question text (same layout as the real one)."""
    answer: str
    """The key of the right option."""


@dataclass(frozen=True)
class Judgment:
    """The model's answer to one closed question."""

    choice: str
    """The key of the chosen option."""
    scores: Mapping[str, float] = field(default_factory=dict)
    """Each option's probability, normalised over the options (empty for ``parsed``)."""
    form: Form = "likelihood"
    """How the answer was read: token likelihoods, the reply's text, or the caller's default."""

    @property
    def confidence(self) -> float:
        """The chosen option's probability (1.0 when the answer was parsed from text)."""
        return self.scores.get(self.choice, 1.0 if self.form == "parsed" else 0.0)

    def p(self, key: str) -> float:
        """The probability of ``key`` (for ``parsed``: 1.0 for the choice, 0.0 otherwise)."""
        if self.scores:
            return self.scores.get(key, 0.0)
        return 1.0 if key == self.choice else 0.0


YES_NO = (Option("yes", "Yes"), Option("no", "No"))


def _labels(options: Sequence[Option]) -> list[str]:
    if options == YES_NO or [o.key for o in options] == ["yes", "no"]:
        return ["Yes", "No"]
    if len(options) > len(string.ascii_uppercase):
        raise ValueError(f"at most {len(string.ascii_uppercase)} options, got {len(options)}")
    return list(string.ascii_uppercase[: len(options)])


def render_options(options: Sequence[Option]) -> str:
    """The options as the model reads them: one per line behind its label."""
    labels = _labels(options)
    return "\n".join(f"{label}) {o.text}" for label, o in zip(labels, options, strict=True))


def _conversation(
    system: str, question: str, options: Sequence[Option], examples: Sequence[Example]
) -> list[BaseMessage]:
    labels = _labels(options)
    by_key = {o.key: label for o, label in zip(options, labels, strict=True)}
    yes_no = labels == ["Yes", "No"]
    tail = "Answer Yes or No." if yes_no else f"Options:\n{render_options(options)}\nAnswer with the letter only."
    messages: list[BaseMessage] = [SystemMessage(system)]
    for example in examples:
        if example.answer not in by_key:
            continue  # an example whose answer is not among this question's options
        messages.append(HumanMessage(f"{example.question}\n{tail}"))
        messages.append(AIMessage(by_key[example.answer]))
    messages.append(HumanMessage(f"{question}\n{tail}"))
    return messages


def _label_of(token: str, labels: Sequence[str]) -> str | None:
    word = token.strip().strip(").:").strip()
    for label in labels:
        if word.lower() == label.lower():
            return label
    return None


def _read_logprobs(raw: AIMessage, labels: Sequence[str]) -> dict[str, float] | None:
    """Probability mass per label from the answer token's alternatives, or None."""
    content = (raw.response_metadata.get("logprobs") or {}).get("content") or []
    if not content:
        return None
    first = content[0]
    alternatives = first.get("top_logprobs") or [first]
    mass: dict[str, float] = {}
    for alt in alternatives:
        label = _label_of(str(alt.get("token", "")), labels)
        logprob = alt.get("logprob")
        if label is None or not isinstance(logprob, (int, float)) or not math.isfinite(logprob):
            continue
        mass[label] = mass.get(label, 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: mass.get(label, 0.0) / total for label in labels}


async def choose(
    model: BaseChatModel,
    system: str,
    question: str,
    options: Sequence[Option],
    *,
    examples: Sequence[Example] = (),
    default: str | None = None,
    config: Any = None,
) -> Judgment:
    """Ask ``question`` with ``options``; the most likely option, with every option's score.

    ``default`` (an option key) is the answer when the reply names no option; without it,
    the first option.
    """
    if not options:
        raise ValueError("choose() needs at least one option")
    keys = [o.key for o in options]
    if default is not None and default not in keys:
        raise ValueError(f"default {default!r} is not an option: {keys}")
    labels = _labels(options)
    key_of = dict(zip(labels, keys, strict=True))
    if len(options) == 1:
        return Judgment(keys[0], {keys[0]: 1.0}, "default")
    bound = model.bind(
        logprobs=True, top_logprobs=TOP_LOGPROBS, max_completion_tokens=1, temperature=0
    )
    raw = await bound.ainvoke(_conversation(system, question, options, examples), config=config)
    assert isinstance(raw, AIMessage)
    scores = _read_logprobs(raw, labels)
    if scores is not None:
        best = max(labels, key=lambda label: scores[label])
        return Judgment(key_of[best], {key_of[k]: v for k, v in scores.items()}, "likelihood")
    text = raw.content if isinstance(raw.content, str) else str(raw.content)
    first = text.strip().split()[0] if text.strip() else ""
    label = _label_of(first, labels)
    if label is not None:
        return Judgment(key_of[label], {}, "parsed")
    return Judgment(default if default is not None else keys[0], {}, "default")


async def yes_no(
    model: BaseChatModel,
    system: str,
    question: str,
    *,
    examples: Sequence[Example] = (),
    default: bool = False,
    config: Any = None,
) -> Judgment:
    """A yes/no question; ``Judgment.p("yes")`` is the model's probability of yes."""
    return await choose(
        model, system, question, YES_NO, examples=examples,
        default="yes" if default else "no", config=config,
    )  # fmt: skip
