"""Evaluations of the orchestrator: datasets, evaluators, the graph as a target, the runner.

* :mod:`evals.datasets` — versioned JSONL datasets (``evals/datasets/``) and their manifest
  (version, kind, evaluators, thresholds);
* :mod:`evals.evaluators` — plan validity, trajectory, correctness/groundedness (LLM judge),
  key facts, customer-database actions, hidden code tests, cost/tokens/latency;
* :mod:`evals.target` — runs one goal through the real supervisor graph;
* :mod:`evals.runner` — langsmith ``aevaluate`` over a dataset, score table, JSON, gates.

Run them with ``orchestrator eval [--dataset NAME] [--model NAME] [--json]``; the pytest
suite in this directory guards the evaluators themselves on the test model.
"""
