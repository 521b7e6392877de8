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
from langgraph.errors import GraphBubbleUp

from core.settings import ModelConfig
from core.types import TaskMetrics


class TokenBudgetExceeded(Exception):
    """A task spent more tokens than ``budgets.task_tokens`` allows."""


class UsageTracker(BaseCallbackHandler):
    """Sums token usage and counts model calls; optionally stops at a token limit."""

    raise_error = True  # so TokenBudgetExceeded stops the model call that crossed the limit
    run_inline = True  # count in the caller's context, not an executor thread

    def __init__(self, limit: int | None = None, carried: TaskMetrics | None = None) -> None:
        super().__init__()
        self.limit = limit
        self._lock = threading.Lock()
        self.carried: TaskMetrics = carried or _zero()
        """Usage of earlier attempts of the same task that crashed (counted here too)."""
        self.tokens_in = self.carried["tokens_in"]
        self.tokens_out = self.carried["tokens_out"]
        self.model_calls = self.carried["model_calls"]
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


def _zero() -> TaskMetrics:
    return TaskMetrics(tokens_in=0, tokens_out=0, model_calls=0, cost_usd=0.0)


_current: ContextVar[UsageTracker | None] = ContextVar("orchestrator_usage", default=None)
register_configure_hook(_current, inheritable=True)

_carried: dict[str, TaskMetrics] = {}
"""attempt key -> usage of attempts that raised and were not recorded yet (per process)."""
_paused: dict[str, TaskMetrics] = {}
"""attempt key -> usage of the current attempt before its pauses for a human."""
_carried_lock = threading.Lock()


def attempt_key(thread_id: str, task_id: str) -> str:
    """The key under which a task's crashed attempts carry their usage."""
    return f"{thread_id}\x1f{task_id}"


def take_carried(key: str) -> TaskMetrics | None:
    """The usage of the task's crashed attempts, once (for the record of the crash)."""
    with _carried_lock:
        _paused.pop(key, None)
        return _carried.pop(key, None)


def _sum(*parts: TaskMetrics | None) -> TaskMetrics:
    total = _zero()
    for part in parts:
        if part:
            for key in ("tokens_in", "tokens_out", "model_calls"):
                total[key] += part[key]  # type: ignore[literal-required]
    return total


def _counted(tracker: UsageTracker, base: TaskMetrics) -> TaskMetrics:
    """What ``tracker`` counted in this block (beyond its starting ``base``)."""
    return TaskMetrics(tokens_in=tracker.tokens_in - base["tokens_in"],
                       tokens_out=tracker.tokens_out - base["tokens_out"],
                       model_calls=tracker.model_calls - base["model_calls"], cost_usd=0.0)


@contextmanager
def track_usage(limit: int | None = None, *, carry: str | None = None) -> Iterator[UsageTracker]:
    """Count every model call made inside the block; raise past ``limit`` tokens.

    With ``carry`` (an :func:`attempt_key`), usage survives the end of the block: a pause
    for a human (``GraphBubbleUp``) keeps the attempt's count so far, and an attempt that
    raises leaves everything it spent for the next one — a retry's tracker starts from what
    the crashed attempts spent (so the task budget counts them), and the crash's record can
    take it (:func:`take_carried`). ``tracker.carried`` is the crashed attempts' share (the
    sub-graph's own checkpointed count covers the pauses of a successful attempt)."""
    with _carried_lock:
        crashed = _carried.get(carry) if carry else None
        paused = _paused.get(carry) if carry else None
    base = _sum(crashed, paused)
    tracker = UsageTracker(limit, base)
    tracker.carried = _sum(crashed)
    token = _current.set(tracker)
    try:
        yield tracker
    except GraphBubbleUp:
        if carry:
            with _carried_lock:
                _paused[carry] = _sum(paused, _counted(tracker, base))
        raise
    except BaseException:
        if carry:
            with _carried_lock:
                _carried[carry] = _sum(crashed, paused, _counted(tracker, base))
                _paused.pop(carry, None)
        raise
    else:
        if carry:
            with _carried_lock:
                _carried.pop(carry, None)
                _paused.pop(carry, None)
    finally:
        _current.reset(token)
