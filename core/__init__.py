"""The ground floor every other package stands on: typed settings, the model layer, the
shared types of a plan and its tasks, usage accounting, and human-review requests.

Nothing here imports ``tools``, ``agents``, ``graph``, ``evals`` or ``orchestrator``.
"""
