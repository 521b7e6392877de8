"""One dispatch step's schedule: each task starts the moment its own dependencies are done.

LangGraph runs a graph in supersteps: every node execution of a step must finish before the
next step starts, so a dependent sent as its own node waits for the slowest task of the
round. Here the whole fan-out runs inside one ``dispatch`` step instead, each task as a
functional-API ``task`` call (see graph/execution.py), and this class decides, on one event
loop, when each call may go: its dependencies done, a concurrency permit free, the budgets
not spent. It holds no LangGraph state; ``Scheduler`` is plain bookkeeping.

Rounds keep their meaning from the round-based design: a task's round is one more than the
latest round it had to wait for, a dependency's or the task whose permit it took. Tasks
started together are round 1; in a chain, each task is one round more; with
``max_concurrency`` 2, the third of four independent tasks is round 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from langgraph.errors import GraphBubbleUp

from graph.state import Task, TaskStatus


class NotStarted(GraphBubbleUp):
    """A task the step let go without running it.

    A ``GraphBubbleUp``, so LangGraph stores nothing for the call and does not re-raise it:
    when the same step runs again (a resume after an interrupt, a restart after a crash) the
    call is made again and can run; otherwise a later step runs the task.
    """


@dataclass
class Admission:
    """What a task gets when it may start."""

    round: int
    payload: object


@dataclass
class Scheduler:
    """Permits, rounds and gates for the tasks of one step (plan order).

    A task's call ``admit``s itself and waits at its gate; the step ``open``s gates when a
    task can start and ``close``s the step when nothing more can start, which lets every
    task still waiting go with ``NotStarted``.
    """

    tasks: Sequence[Task]
    status: dict[str, TaskStatus]
    """Status of every finished task: the blackboard's and this step's."""
    max_concurrency: int
    base_round: int
    hold: bool = False
    """Hold dependents until their dependencies' results have been assessed."""
    partial: frozenset[str] = frozenset()
    """Tasks that failed for good leaving partial work: their dependents may start
    (graph/dag.py's policy)."""
    rounds: dict[str, int] = field(default_factory=dict)
    unassessed: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    _permits: list[int] = field(default_factory=list)
    _holding: dict[str, int] = field(default_factory=dict)
    _gates: dict[str, asyncio.Future[Admission]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._permits = [self.base_round] * self.max_concurrency
        self._by_id = {t.id: t for t in self.tasks}

    # -- the task's side ---------------------------------------------------------------------

    async def admit(self, task_id: str) -> Admission:
        """Wait until ``task_id`` may start; raises ``NotStarted`` if the step closes first."""
        if self.closed:
            raise NotStarted()
        gate: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._gates[task_id] = gate
        self.changed.set()
        return await gate

    def leave(self, task_id: str) -> None:
        """``task_id`` stopped running (finished, raised or paused): its permit is free."""
        permit = self._holding.pop(task_id, None)
        if permit is not None:
            self._permits[permit] = self.rounds[task_id]
        self.changed.set()

    # -- the step's side ---------------------------------------------------------------------

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._holding)

    @property
    def waiting(self) -> frozenset[str]:
        return frozenset(self._gates)

    def _usable(self, task_id: str) -> bool:
        return self.status.get(task_id) == "done" or task_id in self.partial

    def startable(self, task: Task) -> bool:
        return all(self._usable(d) and d not in self.unassessed for d in task.depends_on)

    def held(self) -> bool:
        """Whether a waiting task has all its dependencies done but not all assessed."""
        return any(
            self.unassessed.intersection(t.depends_on)
            and all(self._usable(d) for d in t.depends_on)
            for t in self.tasks if t.id in self._gates
        )

    def next_round(self, task: Task) -> int:
        """The round ``task`` would start in now."""
        if task.id in self.rounds:  # a retry after a transient error keeps its round
            return self.rounds[task.id]
        permit = min((p for i, p in enumerate(self._permits) if i not in self._holding.values()),
                     default=self.base_round)
        return 1 + max([permit, *(self.rounds.get(d, self.base_round) for d in task.depends_on)])

    def open(self, may_start: Callable[[Task, int], object | None]) -> list[str]:
        """Let waiting tasks start, in plan order, while permits last.

        ``may_start(task, round)`` returns the task's payload, or None to keep it waiting
        (a budget is spent, a cap reached).
        """
        opened: list[str] = []
        for task in self.tasks:
            if len(self._holding) >= self.max_concurrency:
                break
            gate = self._gates.get(task.id)
            if gate is None or not self.startable(task):
                continue
            round_ = self.next_round(task)
            payload = may_start(task, round_)
            if payload is None:
                continue
            free = [i for i in range(self.max_concurrency) if i not in self._holding.values()]
            permit = min(free, key=lambda i: self._permits[i])
            self._holding[task.id] = permit
            self.rounds[task.id] = round_
            del self._gates[task.id]
            gate.set_result(Admission(round_, payload))
            opened.append(task.id)
        return opened

    def close(self) -> None:
        """No task starts any more in this step: release every waiting task."""
        self.closed = True
        for gate in self._gates.values():
            gate.set_exception(NotStarted())
        self._gates.clear()

    def finished(self, task_id: str, status: TaskStatus) -> None:
        """The step took ``task_id``'s result: dependents may go (after assessment, if held)."""
        self.status[task_id] = status
        if status == "done" and self.hold:
            self.unassessed.add(task_id)

    def assessed(self, task_ids: Iterable[str]) -> None:
        self.unassessed.difference_update(task_ids)
        self.changed.set()


def last_round(rounds: Mapping[str, int], base: int) -> int:
    return max(rounds.values(), default=base)
