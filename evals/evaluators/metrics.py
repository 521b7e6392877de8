"""Cost, tokens and latency of a run as scored metrics (from ``core.usage.run_metrics``).

These are measurements, not grades: the runner averages them like any score, and the
dataset's thresholds cap them from above (``max``) where quality scores have a floor
(``min``).
"""

from __future__ import annotations

from typing import Any

from evals.evaluators.base import Scores, score

METRIC_KEYS = ("cost_usd", "tokens", "latency_s", "model_calls")
"""Keys this evaluator reports; thresholds on them are upper bounds."""


def run_cost(outputs: dict[str, Any]) -> Scores:
    """Evaluator ``run_metrics``: the run's cost (USD), tokens, latency (s), model calls,
    and ``completed`` (1 when the run finished with an answer)."""
    metrics = dict((outputs or {}).get("metrics") or {})
    status = (outputs or {}).get("status")
    wall = (outputs or {}).get("wall_s")
    if status == "time-out" and wall is not None:
        # The state's latency ends at its last checkpoint; a run cut off by the time limit
        # lasted as long as the limit let it, and that is what it cost the user.
        metrics["latency_s"] = max(float(metrics.get("latency_s") or 0.0), float(wall))
    results = [score(key, float(metrics[key]) if key in metrics else None) for key in METRIC_KEYS]
    if status not in (None, "planned"):
        detail = (outputs or {}).get("error") or (outputs or {}).get("stop_reason") or status
        results.append(score("completed", status == "completed", str(detail)))
    return Scores(results=results)
