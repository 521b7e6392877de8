"""What a usable goal is: checked the same way by the CLI and by the graph's first node."""

from __future__ import annotations

import unicodedata

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
"""Controls, format characters (zero-width spaces and joiners, BOM, bidi marks), separators
and lone combining marks: nothing a reader can see."""
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters that render as blank (Hangul fillers, the blank braille pattern)."""


def has_visible_text(text: str) -> bool:
    """Whether ``text`` shows anything when printed."""
    return any(unicodedata.category(c) not in _INVISIBLE_CATEGORIES and c not in _BLANK_LETTERS
               for c in text)


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
    if not has_visible_text(goal):
        raise InvalidGoal("the goal is empty: it has only invisible characters (zero-width, "
                          "format or control characters)")
    if "\x00" in goal:
        raise InvalidGoal("the goal contains a NUL character (\\x00)")
    if len(goal) > max_chars:
        raise InvalidGoal(
            f"the goal has {len(goal)} characters; the limit is {max_chars} (limits.max_goal_chars)"
        )
    return goal
