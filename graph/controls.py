"""Hard caps and budgets: when one is reached no new task starts and the run synthesizes."""

from __future__ import annotations

import time

from core.settings import Settings
from core.usage import UsageLimits, run_metrics
from graph.state import OrchestratorState


def stop_reason(state: OrchestratorState, settings: Settings, now: float | None = None) -> str | None:
    """Why no further task may start, or None. The text names the cap or budget."""
    if state.get("rounds", 0) >= settings.limits.max_rounds:
        return f"limit: max_rounds ({settings.limits.max_rounds}) reached"
    budgets = settings.budgets
    spent = UsageLimits.from_budgets(budgets).run_reached(run_metrics(state, now))
    if spent:
        return spent
    started = state.get("started_at")
    if budgets.run_wall_s is not None and started is not None:
        elapsed = (now or time.time()) - started - state.get("waited_s", 0.0)  # not a human's wait
        if elapsed >= budgets.run_wall_s:
            return f"budget: run_wall_s ({budgets.run_wall_s}) reached after {elapsed:.1f}s"
    return None
