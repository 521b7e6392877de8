"""Hard caps and budgets: when one is reached no new task starts and the run synthesizes."""

from __future__ import annotations

import time

from core.settings import Settings
from graph.metrics import run_metrics
from graph.state import OrchestratorState


def stop_reason(state: OrchestratorState, settings: Settings, now: float | None = None) -> str | None:
    """Why no further task may start, or None. The text names the cap or budget."""
    if state.get("rounds", 0) >= settings.limits.max_rounds:
        return f"limit: max_rounds ({settings.limits.max_rounds}) reached"
    budgets = settings.budgets
    totals = run_metrics(state, now)
    if budgets.run_tokens is not None and totals["tokens"] >= budgets.run_tokens:
        return f"budget: run_tokens ({budgets.run_tokens}) reached with {totals['tokens']} tokens"
    if budgets.run_cost_usd is not None and totals["cost_usd"] >= budgets.run_cost_usd:
        return f"budget: run_cost_usd ({budgets.run_cost_usd}) reached at ${totals['cost_usd']:.6f}"
    started = state.get("started_at")
    if budgets.run_wall_s is not None and started is not None:
        elapsed = (now or time.time()) - started
        if elapsed >= budgets.run_wall_s:
            return f"budget: run_wall_s ({budgets.run_wall_s}) reached after {elapsed:.1f}s"
    return None
