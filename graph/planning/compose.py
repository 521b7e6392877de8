"""From what a goal needs to a task graph: code, so every combination of specialists works.

The model judges *which* specialists a goal needs (``graph.planning.judged``); this module
lays them out in the order work flows between them:

    gather (researcher — one task, or one per subject in parallel — and analyst, side by side)
      → build (coder; for a project: a task per module, then integration)
      → write (writer)  → review (reviewer)

Each stage depends on every task of the stages before it that exist, so the coder gets the
researcher's facts, the writer the analyst's figures and the coder's files, and the reviewer
checks what was made last. A support request is one support task: its flow looks up the
records and the policy itself. Instructions come from the goal; ids are in order, so a
dependency can only name an earlier task.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from agents.flows.code_spec import ModuleBrief, module_instruction
from agents.flows.project import integration_instruction
from graph.state import Task

__all__ = ["ORDER", "compose"]

ORDER = ("researcher", "analyst", "coder", "writer", "reviewer")
"""The stages, in the order results flow (researcher and analyst form one stage)."""
MAX_TOPICS = 3

ANSWER = "Answer from the knowledge base, citing its sources: {goal}"
GATHER = "Find in the knowledge base the facts needed for this goal, with their sources: {goal}"
GATHER_TOPIC = "Find in the knowledge base, with sources, the facts about: {topic}. (Overall goal: {goal})"
FIGURES = "Compute the figures the goal needs from the data files, as a table: {goal}"
BUILD = "Write the code and its tests: {goal}"
BUILD_FROM = (
    "Write the code and its tests, following the facts and figures of the earlier tasks "
    "(do not invent rules they do not state): {goal}"
)
WRITE = (
    "Write the text this goal asks for as finished prose, from the given material only (the "
    "results of the earlier tasks). Goal: {goal}"
)
REVIEW_CODE = "Review the code from the earlier task for bugs and edge cases. Goal: {goal}"
REVIEW_TEXT = "Check the written text against the knowledge base and list any errors. Goal: {goal}"


def compose(
    goal: str,
    needs: Collection[str],
    topics: Sequence[str] = (),
    modules: Sequence[ModuleBrief] = (),
) -> list[Task]:
    """The tasks for ``goal`` given the specialists it ``needs`` (agent names).

    ``topics``: two or three subjects to research side by side (fewer: one research task).
    ``modules``: a project's modules in dependency order (``graph.planning.design``): the
    build stage is one coder task per module, each after the modules it imports, then one
    integration task after all of them (``agents.flows.project``).
    Agents outside :data:`ORDER` and ``support`` (a custom specialist) get one task each in
    the gather stage, with the goal as their instruction.
    """
    goal = goal.strip()
    if not needs:
        raise ValueError("compose() needs at least one agent")
    if "support" in needs:
        return [Task(id="t1", agent="support", instruction=goal)]
    tasks: list[Task] = []
    before: list[str] = []  # ids of every task of the earlier stages

    def add(agent: str, instruction: str) -> str:
        task_id = f"t{len(tasks) + 1}"
        tasks.append(Task(id=task_id, agent=agent, instruction=instruction, depends_on=list(before)))
        return task_id

    later = set(needs) - {"researcher", "analyst"}
    subjects = [t.strip() for t in topics if t.strip()][:MAX_TOPICS]
    gathered: list[str] = []
    if "researcher" in needs:
        if len(subjects) >= 2 and later:
            gathered += [add("researcher", GATHER_TOPIC.format(topic=s, goal=goal)) for s in subjects]
        else:
            gathered.append(add("researcher", (GATHER if later else ANSWER).format(goal=goal)))
    if "analyst" in needs:
        gathered.append(add("analyst", FIGURES.format(goal=goal) if later else goal))
    for agent in sorted(set(needs) - set(ORDER)):
        gathered.append(add(agent, goal))
    before += gathered
    made: list[str] = []  # the last stage's tasks: what a reviewer checks
    if "coder" in needs and len(modules) >= 2:
        gathered_ids = list(before)
        by_file: dict[str, str] = {}
        for brief in modules:
            task_id = f"t{len(tasks) + 1}"
            used = [by_file[f] for f, _ in brief.uses if f in by_file]
            tasks.append(Task(id=task_id, agent="coder", instruction=module_instruction(brief, goal),
                              depends_on=gathered_ids + used))  # fmt: skip
            by_file[brief.file] = task_id
        # The integration task runs every module's tests together, sends a failing module
        # back to the coder and writes the design and the project's README.
        task_id = f"t{len(tasks) + 1}"
        tasks.append(Task(id=task_id, agent="coder", instruction=integration_instruction(modules, goal),
                          depends_on=gathered_ids + list(by_file.values())))  # fmt: skip
        made = [task_id]
        before += [*by_file.values(), task_id]
    elif "coder" in needs:
        made = [add("coder", (BUILD_FROM if before else BUILD if later - {"coder"} else "{goal}").format(goal=goal))]
        before += made
    if "writer" in needs:
        made = [add("writer", (WRITE if before else "{goal}").format(goal=goal))]
        before += made
    if "reviewer" in needs:
        last = tasks[-1].agent if tasks else ""
        text = REVIEW_CODE if last == "coder" else REVIEW_TEXT if last == "writer" else "{goal}"
        reviewed = made or ([tasks[-1].id] if tasks else [])
        task_id = f"t{len(tasks) + 1}"
        tasks.append(Task(id=task_id, agent="reviewer", instruction=text.format(goal=goal), depends_on=reviewed))
    return tasks
