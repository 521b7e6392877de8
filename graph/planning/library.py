"""The plan library: worked (goal → plan) examples the planner is guided by, and learns into.

Three sources, nearest first when they tie:

- ``approved``: plans of runs that completed and whose plan a human approved (or wrote), kept
  in ``data_dir/plan_library.jsonl`` — this is how planning gets better with use: a plan a
  person approved for a new kind of goal becomes the closest example for the next goal like it;
- ``user``: the operator's own examples (``settings.plan_examples_file``);
- ``seed``: general examples shipped with the product (``seed_plans.jsonl``), written for
  the library and covering each way specialists combine.

Retrieval is by similarity of goals (BM25 over ``core.lexicon`` terms): it picks which worked
examples the model sees, it never decides a plan by itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.flows.code_spec import module_brief
from core.lexicon import TermIndex
from core.settings import Settings

__all__ = ["LIBRARY_FILE", "PlanExample", "PlanLibrary", "library_for"]

Source = Literal["seed", "user", "approved"]
SEED_FILE = Path(__file__).with_name("seed_plans.jsonl")
LIBRARY_FILE = "plan_library.jsonl"
"""The approved plans' file in ``data_dir``."""
MAX_GOAL_CHARS = 600
"""Longer goals are stored cut: the start says what kind of goal it is."""


@dataclass(frozen=True)
class PlanExample:
    """One worked example: a goal and the specialists its plan used."""

    goal: str
    """The goal as the user wrote it."""
    needs: frozenset[str]
    """The specialists the plan used (agent names)."""
    topics: tuple[str, ...] = ()
    """Separate subjects researched in parallel, when the plan did that."""
    tasks: tuple[Mapping[str, Any], ...] = ()
    """The plan's tasks, for examples recorded from runs (empty for written examples)."""
    source: Source = "seed"
    """Where the example comes from."""
    modules: tuple[Mapping[str, Any], ...] = ()
    """A project plan's module design (file, purpose, defines, uses per module), when the
    plan split the code into modules (``graph.planning.design``)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Source) -> PlanExample:
        """An example from a library line; ``ValueError`` naming what is wrong."""
        goal = data.get("goal")
        if not isinstance(goal, str) or not goal.strip():
            raise ValueError("'goal' must be a non-empty string")
        tasks = data.get("tasks") or []
        if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
            raise ValueError("'tasks' must be a list of task objects")
        needs = data.get("needs") or [str(t.get("agent", "")) for t in tasks]
        if not isinstance(needs, list) or not needs or not all(isinstance(n, str) and n for n in needs):
            raise ValueError("'needs' (or the tasks' agents) must name at least one agent")
        topics = data.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise ValueError("'topics' must be a list of strings")
        modules = data.get("modules") or []
        if not isinstance(modules, list) or not all(
            isinstance(m, Mapping) and isinstance(m.get("file"), str) for m in modules
        ):
            raise ValueError("'modules' must be a list of module objects, each with a 'file'")
        return cls(goal.strip()[:MAX_GOAL_CHARS], frozenset(needs), tuple(topics), tuple(tasks),
                   source, tuple(modules))  # fmt: skip

    @property
    def is_project(self) -> bool:
        """Whether the plan split the code into modules (several coder tasks)."""
        return len(self.modules) >= 2 or sum(1 for t in self.tasks if t.get("agent") == "coder") >= 2

    @property
    def parallel_research(self) -> bool:
        """Whether the plan researched separate subjects side by side."""
        return len(self.topics) >= 2 or sum(1 for t in self.tasks if t.get("agent") == "researcher") >= 2


@dataclass
class PlanLibrary:
    """The examples of one data dir, searchable by similarity to a goal."""

    examples: list[PlanExample]
    """Every example, approved ones first."""
    store: Path | None = None
    """Where approved plans are appended (None: nothing is learned)."""
    problems: list[str] = field(default_factory=list)
    """Lines that could not be read (file and line number, and why), skipped."""
    _index: TermIndex | None = field(default=None, repr=False)

    def nearest(self, goal: str, k: int, agents: Iterable[str] | None = None) -> list[PlanExample]:
        """The ``k`` examples whose goals are most like ``goal`` (only those whose agents all
        exist, when ``agents`` is given); ties keep library order (approved first)."""
        allowed = None if agents is None else set(agents)
        if self._index is None:
            self._index = TermIndex([e.goal for e in self.examples])
        scored = sorted(
            enumerate(self._index.scores(goal)), key=lambda pair: (-pair[1], pair[0])
        )
        out: list[PlanExample] = []
        for i, _score in scored:
            example = self.examples[i]
            if allowed is not None and not example.needs <= allowed:
                continue
            out.append(example)
            if len(out) == k:
                break
        return out

    def balanced(
        self, goal: str, has: Any, k: int, agents: Iterable[str] | None = None
    ) -> list[PlanExample]:
        """The nearest examples for a yes/no question, about half with ``has(example)`` true
        and half false (a model shown only "yes" examples answers "yes"), nearest last."""
        ranked = self.nearest(goal, len(self.examples), agents)
        yes = [e for e in ranked if has(e)][: (k + 1) // 2]
        no = [e for e in ranked if not has(e)][: k // 2]
        chosen = set(map(id, yes + no))
        # Nearest last: the example closest to the question sits right before it.
        return [e for e in reversed(ranked) if id(e) in chosen]

    def nearest_designs(self, goal: str, k: int) -> list[PlanExample]:
        """The ``k`` examples with a module design whose goals are most like ``goal``."""
        return [e for e in self.nearest(goal, len(self.examples)) if len(e.modules) >= 2][:k]

    def record(self, goal: str, tasks: Sequence[Mapping[str, Any]]) -> PlanExample | None:
        """Add an approved plan of a completed run (to the store and to this library)."""
        if self.store is None or not goal.strip() or not tasks:
            return None
        slim = [
            {"id": t.get("id"), "agent": t.get("agent"), "depends_on": list(t.get("depends_on") or [])}
            for t in tasks
        ]
        entry: dict[str, Any] = {"goal": goal, "tasks": slim}
        modules = _modules_of(tasks)
        if modules:
            entry["modules"] = modules  # an approved design guides the next similar project
        example = PlanExample.from_json(entry, "approved")
        if any(e.source == "approved" and e.goal == example.goal and e.needs == example.needs
               for e in self.examples):
            return None  # the same plan for the same goal teaches nothing new
        line = json.dumps({**entry, "goal": example.goal, "at": round(time.time())})
        self.store.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.store, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # one line per writer, whole, across processes
            f.write(line + "\n")
        self.examples.insert(0, example)
        self._index = None
        return example


def _modules_of(tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The module design a project plan's coder tasks state ([] for any other plan)."""
    found = []
    for t in tasks:
        brief = module_brief(str(t.get("instruction") or "")) if t.get("agent") == "coder" else None
        if brief is not None:
            found.append({"file": brief.file, "purpose": brief.purpose,
                          "defines": list(brief.defines), "uses": [f for f, _ in brief.uses]})  # fmt: skip
    return found if len(found) >= 2 else []


def _read(path: Path, source: Source, problems: list[str]) -> list[PlanExample]:
    examples: list[PlanExample] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}: {err}")
        return []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object")
            examples.append(PlanExample.from_json(data, source))
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            problems.append(f"{path}:{n}: {err}")
    return examples


_cache: dict[tuple[str, str], tuple[tuple[float, ...], PlanLibrary]] = {}
_lock = threading.Lock()


def _mtime(path: Path | None) -> float:
    try:
        return path.stat().st_mtime if path else 0.0
    except OSError:
        return 0.0


def library_for(settings: Settings) -> PlanLibrary:
    """The plan library of ``settings``' data dir (read again when one of its files changed).

    Reads files: call it off the event loop (``asyncio.to_thread``)."""
    store = settings.data_dir / LIBRARY_FILE
    user = settings.plan_examples_file
    key = (str(store), str(user or ""))
    stamp = (_mtime(store), _mtime(user))
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    problems: list[str] = []
    examples = _read(store, "approved", problems)[::-1]  # newest approved first
    if user is not None:
        if not user.is_file():
            problems.append(f"plan_examples_file {user}: no such file")
        examples += _read(user, "user", problems)
    examples += _read(SEED_FILE, "seed", problems)
    library = PlanLibrary(examples, store, problems)
    with _lock:
        _cache[key] = (stamp, library)
    return library
