"""Usage: what model calls cost, how it is counted, and the limits on it — one module.

- ``Usage``: the one usage type (tokens in/out, cached prompt tokens, model calls, cost, and
  the structured-output repair counters), summed with ``+=``.
- ``UsageDict`` / ``TaskMetrics`` / ``RunMetrics``: its JSON shape in checkpointed state
  (``tokens_in``, ``tokens_out``, ``model_calls``, ``cost_usd``, ...), per task and per run.
  Old checkpoints hold exactly these keys, so they stay readable (``Usage.from_dict``).
- ``UsageTracker``: LangChain's usage-metadata callback, extended to count calls and to stop
  at a token limit; ``track_usage()`` installs one for a block through a context variable
  registered once as a LangChain configure hook, so every chat model call made inside the
  block — including those deep inside agent sub-graphs — is counted, and parallel tasks
  (separate asyncio contexts) never mix their counts.
- ``UsageLimits``: the token and cost budgets (``settings.budgets``) checked against usage,
  beside the usage they limit (as pydantic-ai keeps ``UsageLimits``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypedDict

from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook
from langgraph.errors import GraphBubbleUp

from core.settings import Budgets, ModelConfig
from core.text import estimate_tokens

# -- the usage type ---------------------------------------------------------------------------


@dataclass
class Usage:
    """Tokens, model calls and cost spent, summed over calls (and attempts)."""

    input_tokens: int = 0
    """Prompt tokens."""
    output_tokens: int = 0
    """Completion tokens."""
    calls: int = 0
    """Model calls made."""
    cached_tokens: int = 0
    """Prompt tokens the server served from its prompt cache (``input_token_details.cache_read``)."""
    cost_usd: float = 0.0
    """Cost under the model's price table (0 until priced, see ``priced``)."""
    invalid_outputs: int = 0
    """Structured replies rejected: not schema-valid, cut at max_tokens, or failing a check."""
    repair_retries: int = 0
    """Structured calls made again after an invalid reply (shown with its error)."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, raw: AIMessage, prompt: Sequence[BaseMessage]) -> None:
        """Count one call; estimates tokens when the backend reported no usage."""
        self.calls += 1
        usage = raw.usage_metadata
        if usage:
            self.input_tokens += usage.get("input_tokens", 0)
            self.output_tokens += usage.get("output_tokens", 0)
            self.cached_tokens += (usage.get("input_token_details") or {}).get("cache_read") or 0
        else:
            self.input_tokens += estimate_tokens(prompt)
            self.output_tokens += estimate_tokens([raw])

    def __iadd__(self, other: Usage) -> Usage:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.calls += other.calls
        self.cached_tokens += other.cached_tokens
        self.cost_usd = round(self.cost_usd + other.cost_usd, 8)
        self.invalid_outputs += other.invalid_outputs
        self.repair_retries += other.repair_retries
        return self

    def priced(self, price: ModelConfig | None) -> Usage:
        """This usage with ``cost_usd`` computed from ``price``'s table."""
        return Usage(self.input_tokens, self.output_tokens, self.calls, self.cached_tokens,
                     cost_usd(self.input_tokens, self.output_tokens, price),
                     self.invalid_outputs, self.repair_retries)  # fmt: skip

    def as_metrics(self) -> dict[str, int]:
        """The keys a specialist's ``usage`` holds (tokens_in, tokens_out, model_calls)."""
        return {
            "tokens_in": self.input_tokens,
            "tokens_out": self.output_tokens,
            "model_calls": self.calls,
        }

    def as_task_metrics(self) -> TaskMetrics:
        """The usage keys of a task's metrics, with the cost."""
        return TaskMetrics(tokens_in=self.input_tokens, tokens_out=self.output_tokens,
                           model_calls=self.calls, cost_usd=self.cost_usd)  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        """Usage read back from its JSON shape (any of ``UsageDict``'s keys; missing are 0)."""
        data = data or {}
        return cls(
            input_tokens=int(data.get("tokens_in", 0)),
            output_tokens=int(data.get("tokens_out", 0)),
            calls=int(data.get("model_calls", 0)),
            cached_tokens=int(data.get("cached_tokens", 0)),
            cost_usd=float(data.get("cost_usd", 0.0)),
        )


def cost_usd(tokens_in: int, tokens_out: int, price: ModelConfig | None) -> float:
    """Cost of a call volume under a model's price table (per million tokens)."""
    if price is None:
        return 0.0
    return round((tokens_in * price.price_in_per_1m + tokens_out * price.price_out_per_1m) / 1e6, 8)


# -- its JSON shapes in state -----------------------------------------------------------------


class UsageDict(TypedDict):
    """Usage as a specialist's state holds it (JSON; the keys of ``TaskMetrics``)."""

    tokens_in: int
    tokens_out: int
    model_calls: int


class TaskMetrics(TypedDict, total=False):
    """What one task cost; summed over its attempts (``SUMMED_METRICS``)."""

    model: str
    started_at: float
    ended_at: float
    latency_s: float
    tokens_in: int
    tokens_out: int
    cost_usd: float
    retries: int
    cache_hit: bool
    model_calls: int


SUMMED_METRICS = ("tokens_in", "tokens_out", "cost_usd", "model_calls", "retries")
"""Task metrics that accumulate over attempts; the others describe the latest attempt."""


def add_usage(usage: Mapping[str, Any] | None, tokens_in: int, tokens_out: int,
              calls: int = 1) -> UsageDict:
    """``usage`` (a ``UsageDict``, or None) plus ``calls`` more model calls' tokens."""
    before = Usage.from_dict(usage)
    return UsageDict(tokens_in=before.input_tokens + tokens_in,
                     tokens_out=before.output_tokens + tokens_out,
                     model_calls=before.calls + calls)  # fmt: skip


class RunMetrics(TypedDict):
    """Totals for one run, derived from the checkpointed state (never stored twice)."""

    tasks_total: int
    tasks_completed: int
    tasks_failed: int
    tasks_skipped: int
    tokens_in: int
    tokens_out: int
    tokens: int
    cost_usd: float
    model_calls: int
    cache_hits: int
    retries: int
    latency_s: float


def run_metrics(state: Mapping[str, Any], now: float | None = None) -> RunMetrics:
    """Sum task and supervisor usage; latency is wall time from start to the last task end,
    less the time the plan waited for a human (``waited_s``)."""
    results: Mapping[str, Any] = state.get("results") or {}
    task_metrics = [r.get("metrics") or {} for r in results.values()]
    overhead = list(state.get("usage") or [])
    every = task_metrics + overhead
    statuses = [r.get("status") for r in results.values()]
    started = state.get("started_at")
    ends = [m["ended_at"] for m in task_metrics if m.get("ended_at")]
    if state.get("finished_at"):
        ends.append(state["finished_at"])
    end = max(ends) if ends else (now or time.time())
    tokens_in = sum(int(m.get("tokens_in", 0)) for m in every)
    tokens_out = sum(int(m.get("tokens_out", 0)) for m in every)
    return RunMetrics(
        tasks_total=len(state.get("tasks") or []),
        tasks_completed=statuses.count("done"),
        tasks_failed=statuses.count("failed"),
        tasks_skipped=statuses.count("skipped"),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens=tokens_in + tokens_out,
        cost_usd=round(sum(float(m.get("cost_usd", 0.0)) for m in every), 8),
        model_calls=sum(int(m.get("model_calls", 0)) for m in every),
        cache_hits=sum(1 for m in task_metrics if m.get("cache_hit")),
        retries=sum(int(m.get("retries", 0)) for m in task_metrics),
        latency_s=round(max(0.0, end - started - float(state.get("waited_s") or 0.0)), 6)
        if started else 0.0,
    )


# -- limits -----------------------------------------------------------------------------------


class TokenBudgetExceeded(Exception):
    """A task spent more tokens than ``budgets.task_tokens`` allows."""


@dataclass(frozen=True)
class UsageLimits:
    """Token and cost limits on usage (``None``: unlimited), from ``settings.budgets``."""

    run_tokens: int | None = None
    run_cost_usd: float | None = None
    task_tokens: int | None = None

    @classmethod
    def from_budgets(cls, budgets: Budgets) -> UsageLimits:
        return cls(budgets.run_tokens, budgets.run_cost_usd, budgets.task_tokens)

    def run_reached(self, totals: RunMetrics) -> str | None:
        """Why a run with these totals may start no further task, or None."""
        if self.run_tokens is not None and totals["tokens"] >= self.run_tokens:
            return f"budget: run_tokens ({self.run_tokens}) reached with {totals['tokens']} tokens"
        if self.run_cost_usd is not None and totals["cost_usd"] >= self.run_cost_usd:
            return f"budget: run_cost_usd ({self.run_cost_usd}) reached at ${totals['cost_usd']:.6f}"
        return None

    def check_task_tokens(self, spent: int) -> None:
        """Raise ``TokenBudgetExceeded`` when a task has spent more than ``task_tokens``."""
        if self.task_tokens is not None and spent > self.task_tokens:
            raise TokenBudgetExceeded(
                f"budget: task_tokens ({self.task_tokens}) exceeded with {spent} tokens")


# -- the tracker ------------------------------------------------------------------------------


class UsageTracker(UsageMetadataCallbackHandler):
    """LangChain's usage-metadata callback (``usage_metadata``: usage per model name) that
    also counts every call — with or without reported usage or a model name — and stops at
    a task token limit."""

    raise_error = True  # so TokenBudgetExceeded stops the model call that crossed the limit
    run_inline = True  # count in the caller's context, not an executor thread

    def __init__(self, limit: int | None = None, carried: TaskMetrics | None = None) -> None:
        super().__init__()
        self.limits = UsageLimits(task_tokens=limit)
        self.carried: TaskMetrics = carried or _zero()
        """Usage of earlier attempts of the same task that crashed (counted here too)."""
        self.usage = Usage.from_dict(self.carried)
        self.models: set[str] = set()

    @property
    def tokens_in(self) -> int:
        return self.usage.input_tokens

    @property
    def tokens_out(self) -> int:
        return self.usage.output_tokens

    @property
    def model_calls(self) -> int:
        return self.usage.calls

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        super().on_llm_end(response, **kwargs)
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        message = generation.message if isinstance(generation, ChatGeneration) else None
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        with self._lock:
            self.usage.calls += 1
            if usage:
                self.usage.input_tokens += usage.get("input_tokens", 0)
                self.usage.output_tokens += usage.get("output_tokens", 0)
                self.usage.cached_tokens += (usage.get("input_token_details") or {}).get("cache_read") or 0
            if isinstance(message, AIMessage) and message.response_metadata.get("model_name"):
                self.models.add(str(message.response_metadata["model_name"]))
            spent = self.usage.total_tokens
        self.limits.check_task_tokens(spent)

    def metrics(self, price: ModelConfig | None) -> TaskMetrics:
        """The counts as task metrics, priced with ``price``'s table."""
        return self.usage.priced(price).as_task_metrics()


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
