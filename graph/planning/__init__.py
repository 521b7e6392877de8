"""Planning, in one package: goal -> task graph.

- ``planner``: the graph's ``plan`` and ``review_plan`` nodes (the one entry point), and
  learning approved plans;
- ``judged``: the small-model planner — which specialists a goal needs, as yes/no judgments;
- ``compose``: from the specialists needed to tasks and dependencies (code);
- ``library``: the worked (goal → plan) examples that guide both planners;
- ``validation``: the plan schema, and checks that repair or reject a plan;
- ``prompts``: the planner's prompts.
"""

from graph.planning.validation import PlanCheck, find_cycle, plan_schema, validate_plan

__all__ = ["PlanCheck", "find_cycle", "plan_schema", "validate_plan"]
