"""Cutting text to a size, and the one estimate of how many tokens text takes.

No tokenizer: the estimate must work for every backend (OpenAI, the embedded llama.cpp
model, the test model). It is conservative — JSON and code tokenize denser than prose — so
a prompt fitted with it fits small local models' 8k windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.messages.utils import count_tokens_approximately

CHARS_PER_TOKEN = 3.0
"""Characters per token of every estimate (prompts, dependency context, synthesis)."""
TRUNCATED = "\n[… truncated]"
"""What marks a cut, unless the caller picks another mark."""


def estimate_tokens(messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None) -> int:
    """Approximate prompt tokens of ``messages`` (and the ``tools`` schemas offered with them)."""
    return count_tokens_approximately(
        messages, chars_per_token=CHARS_PER_TOKEN, tools=list(tools) if tools else None
    )


def text_tokens(text: str) -> int:
    """Approximate tokens of ``text`` sent as one message."""
    return estimate_tokens([HumanMessage(text)])


def truncate(text: str, max_chars: int, mark: str = TRUNCATED) -> str:
    """``text`` cut to at most ``max_chars``, keeping the start and ending in ``mark``."""
    if len(text) <= max_chars:
        return text
    keep = max(max_chars - len(mark), 0)
    return text[:keep].rstrip() + mark


def truncate_to_tokens(text: str, budget: int) -> str:
    """``text`` cut to about ``budget`` tokens, keeping the start and marking the cut."""
    if budget <= 0:
        return ""
    if text_tokens(text) <= budget:
        return text
    chars = max(int(budget * CHARS_PER_TOKEN) - 40, 0)
    while chars > 0 and text_tokens(text[:chars]) > budget - 10:
        chars = int(chars * 0.9)
    return text[:chars].rstrip() + TRUNCATED


def truncate_middle(text: str, max_chars: int) -> str:
    """``text`` cut in the middle to about ``max_chars`` (at least 100), keeping its head and
    its tail — tracebacks and test runs end with the useful line."""
    max_chars = max(max_chars, 100)
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return f"{text[:half]}\n… [{len(text) - 2 * half} chars cut] …\n{text[-half:]}"
