"""What a usable goal is: checked the same way by the CLI and by the graph's first node."""

from __future__ import annotations


class InvalidGoal(ValueError):
    """The goal cannot be run; the message says why, in one line."""


def check_goal(goal: object, max_chars: int) -> str:
    """The goal, stripped; ``InvalidGoal`` when it is missing, empty, over-long or holds a NUL."""
    if goal is None:
        raise InvalidGoal('no goal: send {"goal": "..."} or {"messages": [...]} with a human message')
    if not isinstance(goal, str):
        raise InvalidGoal(f"the goal must be text, not {type(goal).__name__}")
    goal = goal.strip()
    if not goal:
        raise InvalidGoal("the goal is empty")
    if "\x00" in goal:
        raise InvalidGoal("the goal contains a NUL character (\\x00)")
    if len(goal) > max_chars:
        raise InvalidGoal(
            f"the goal has {len(goal)} characters; the limit is {max_chars} (limits.max_goal_chars)"
        )
    return goal
