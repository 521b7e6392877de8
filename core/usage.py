"""Usage tracking: tokens, model calls and cost of everything a node does.

A context variable registered once as a LangChain configure hook, so every chat model
call made inside ``track_usage()`` — including those deep inside agent sub-graphs — is
counted, and parallel tasks (separate asyncio contexts) never mix their counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from core.settings import ModelConfig
from core.types import TaskMetrics


class TokenBudgetExceeded(Exception):
    """A task spent more tokens than ``budgets.task_tokens`` allows."""


class UsageTracker(BaseCallbackHandler):
    """Sums token usage and counts model calls; optionally stops at a token limit."""

    raise_error = True  # so TokenBudgetExceeded stops the model call that crossed the limit
    run_inline = True  # count in the caller's context, not an executor thread

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit
        self._lock = threading.Lock()
        self.tokens_in = 0
        self.tokens_out = 0
        self.model_calls = 0
        self.models: set[str] = set()

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        message = generation.message if isinstance(generation, ChatGeneration) else None
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        with self._lock:
            self.model_calls += 1
            if usage:
                self.tokens_in += usage.get("input_tokens", 0)
                self.tokens_out += usage.get("output_tokens", 0)
            if isinstance(message, AIMessage) and message.response_metadata.get("model_name"):
                self.models.add(str(message.response_metadata["model_name"]))
            spent = self.tokens_in + self.tokens_out
        if self.limit is not None and spent > self.limit:
            raise TokenBudgetExceeded(f"budget: task_tokens ({self.limit}) exceeded with {spent} tokens")

    def metrics(self, price: ModelConfig | None) -> TaskMetrics:
        """The counts as task metrics, priced with ``price``'s table."""
        cost = cost_usd(self.tokens_in, self.tokens_out, price)
        return TaskMetrics(
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            model_calls=self.model_calls,
            cost_usd=cost,
        )


def cost_usd(tokens_in: int, tokens_out: int, price: ModelConfig | None) -> float:
    """Cost of a call volume under a model's price table (per million tokens)."""
    if price is None:
        return 0.0
    return round((tokens_in * price.price_in_per_1m + tokens_out * price.price_out_per_1m) / 1e6, 8)


_current: ContextVar[UsageTracker | None] = ContextVar("orchestrator_usage", default=None)
register_configure_hook(_current, inheritable=True)


@contextmanager
def track_usage(limit: int | None = None) -> Iterator[UsageTracker]:
    """Count every model call made inside the block; raise past ``limit`` tokens."""
    tracker = UsageTracker(limit)
    token = _current.set(tracker)
    try:
        yield tracker
    finally:
        _current.reset(token)
