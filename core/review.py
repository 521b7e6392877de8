"""Human review: every kind of pause — its request, its answer, validation and resume values.

Every pause speaks LangChain's human-in-the-loop shape
(``langchain.agents.middleware.human_in_the_loop``), so any client that renders HITL
requests (Agent Chat UI, Studio, ``useStream``) can answer it without knowing our types:

- the interrupt value is a ``HITLRequest``: ``action_requests`` (one action: ``name``,
  ``args``, a ``description`` for the reviewer) and ``review_configs`` (the decisions
  allowed for it), plus ``type`` — which pause this is — and the pause's details;
- the answer is a ``HITLResponse``: ``{"decisions": [{"type": "approve"}]}``,
  ``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}`` or
  ``{"type": "reject", "message": "why"}``.

The older answers (``{"action": "approve"}``, ``{"approved": true}``, …) are still accepted,
and so is a text reply (an A2A or chat client's): "approve" / "yes" / "ok" approves a plan,
an answer or a retry, any other text rejects with that text as the reason. A tool action is
approved only by a decision (or ``{"approved": true}``): words never approve a side effect.

=================  ==========================  ==========================================
``type``           action (``name``: args)     decisions
=================  ==========================  ==========================================
``plan_review``    ``plan``: ``tasks``         approve · edit (new ``tasks``) · reject (re-plan)
``tool_approval``  the tool: its arguments     approve · reject (the action never runs)
``answer_review``  ``answer``: ``answer``      approve · edit (new ``answer``) · reject (rewrite)
``task_failure``   ``retry_task``: task        approve (retry) · edit (new ``instruction``) · reject (skip)
=================  ==========================  ==========================================

The nodes build requests and read answers only through this module; the CLI and SDK
clients build answers with :func:`resume_value`.

**Which question an answer answers.** When one node run asks two questions in a row (two
actions of one step), LangGraph hands an answer addressed to the first question's
interrupt id to the next question too, for compatibility with its older ids
(``langgraph.pregel._algo``: "Older versions gave all of a task's interrupts the first
id"): an approval sent late for an answered refund would approve the ticket update asked
after it. Every request therefore carries a ``question`` id (a digest of what it asks) and
:func:`resume_value` echoes it; a node gives an answer that names another question to
nobody (:func:`answers_other_question`) and asks again.
Answers without the field (a generic HITL client) are taken as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:  # the shapes are LangChain's (type-checked); importing langchain.agents costs ~1 s
    from langchain.agents.middleware.human_in_the_loop import (
        ActionRequest,
        Decision,
        DecisionType,
        HITLRequest,
        HITLResponse,
        ReviewConfig,
    )

Kind = Literal["plan_review", "tool_approval", "answer_review", "task_failure"]
INTERRUPT_TYPES: tuple[str, ...] = get_args(Kind)

PLAN_ACTION = "plan"
ANSWER_ACTION = "answer"
RETRY_ACTION = "retry_task"
ALLOWED: dict[str, list[DecisionType]] = {
    "plan_review": ["approve", "edit", "reject"],
    "tool_approval": ["approve", "reject"],
    "answer_review": ["approve", "edit", "reject"],
    "task_failure": ["approve", "edit", "reject"],
}
"""The decisions each kind of pause accepts."""
FACTS_SHOWN = 5
"""At most this many of the agent's earlier tool results go into a tool approval's description."""
FACT_CHARS = 400
"""Each fact shown is cut to this many characters."""


class InvalidAnswer(ValueError):
    """A resume value that is no valid answer to the pause (the message says why)."""


# -- requests (what the nodes interrupt with) ---------------------------------------------------


QUESTION_FIELD = "question"
"""The request's and the answer's field naming the question (see the module docstring)."""


def question_id(kind: str, name: str, args: Mapping[str, Any], scope: Any = None) -> str:
    """A digest of what a pause asks: its kind, its action and arguments, and ``scope``
    (the task, for a tool approval)."""
    text = json.dumps([kind, name, args, scope], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _request(kind: Kind, name: str, args: dict[str, Any], description: str, /,
             scope: Any = None, **details: Any) -> dict[str, Any]:
    action: ActionRequest = {"name": name, "args": args, "description": description}
    config: ReviewConfig = {"action_name": name, "allowed_decisions": list(ALLOWED[kind])}
    request: HITLRequest = {"action_requests": [action], "review_configs": [config]}
    return {"type": kind, **request, QUESTION_FIELD: question_id(kind, name, args, scope),
            **details}


def _tasks_text(tasks: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for t in tasks:
        after = f" (after {', '.join(t['depends_on'])})" if t.get("depends_on") else ""
        lines.append(f"- {t.get('id')} [{t.get('agent')}]{after}: {t.get('instruction')}")
    return "\n".join(lines)


def plan_review_request(goal: str, tasks: list[dict[str, Any]], version: int,
                        error: str | None = None) -> dict[str, Any]:
    """The plan review: approve the task graph, edit its tasks, or reject it (re-plan)."""
    text = f"Plan v{version} for the goal: {goal}\n{_tasks_text(tasks)}"
    if error:
        text += f"\nThe last answer was not applied: {error}"
    return _request("plan_review", PLAN_ACTION, {"tasks": tasks}, text,
                    goal=goal, tasks=tasks, version=version, error=error)


def _fact_entries(trace: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The agent's earlier successful tool calls, the last ``FACTS_SHOWN``."""
    calls = [e for e in trace if e.get("kind", "call") == "call" and e.get("ok") and e.get("tool")]
    return calls[-FACTS_SHOWN:]


def _result(entry: Mapping[str, Any]) -> str:
    result = " ".join(str(entry.get("observation", "")).split())
    return result if len(result) <= FACT_CHARS else result[: FACT_CHARS - 1] + "…"


def _facts(trace: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the agent found before asking: its earlier successful tool calls and results."""
    return [f"{e['tool']}({json.dumps(e.get('args', {}), default=str)}): {_result(e)}"
            for e in _fact_entries(trace)]


def quoted(text: str) -> str:
    """``text`` as a quoted literal (JSON string syntax): whatever it says — "approved by the
    team lead", a line that looks like ours — reads as something quoted, on one line."""
    return json.dumps(" ".join(str(text).split()), ensure_ascii=False)


def _quoted_fact(entry: Mapping[str, Any]) -> str:
    return f"{entry['tool']}({json.dumps(entry.get('args', {}), default=str)}) returned {quoted(_result(entry))}"


def tool_approval_request(task_id: str | None, agent: str, tool: str, args: dict[str, Any],
                          thought: str = "",
                          trace: Sequence[Mapping[str, Any]] = (),
                          action_key: str | None = None) -> dict[str, Any]:
    """Approval of one high-risk tool call, with what the agent found that led to it.

    ``action_key``: the action's idempotency key, under which the action ledger records the
    decision that stands (a client can check whether its own decision was the one)."""
    facts = _facts(trace)
    text = f"Task {task_id} ({agent}) wants to run {tool} with {json.dumps(args, default=str)}."
    if thought.strip():
        text += f"\nWhy (the model's words, quoted): {quoted(thought)}"
    if facts:
        text += ("\nWhat the agent found (tool results, quoted data: not instructions, and no "
                 "approval):\n" + "\n".join(f"- {_quoted_fact(e)}" for e in _fact_entries(trace)))
    return _request("tool_approval", tool, args, text, [task_id, agent, action_key],
                    task_id=task_id, agent=agent, tool=tool, args=args, facts=facts,
                    action_key=action_key)


def answer_review_request(answer: str) -> dict[str, Any]:
    """Review of the final answer: approve, edit it, or reject it (written again)."""
    return _request("answer_review", ANSWER_ACTION, {"answer": answer},
                    "The final answer, before the run ends:\n" + answer, answer=answer)


def task_failure_request(task: dict[str, Any], error: str, history: list[str]) -> dict[str, Any]:
    """A task that failed every automatic recovery: retry it, edit its instruction, or skip it."""
    text = (f"Task {task.get('id')} ({task.get('agent')}) failed: {error}\n"
            f"Instruction: {task.get('instruction')}\nApprove to retry it, edit the instruction,"
            " or reject to skip it.")
    return _request("task_failure", RETRY_ACTION,
                    {"task_id": task.get("id"), "instruction": task.get("instruction", "")}, text,
                    task=task, error=error, history=history,
                    actions=["retry", "edit", "skip", "abort"])


# -- answers (what the nodes read back) ---------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One pause's answer, whichever shape it came in."""

    type: Literal["approve", "edit", "reject"]
    args: dict[str, Any] = field(default_factory=dict)
    """The edited action's arguments (edit)."""
    message: str = ""
    """Why (reject), or feedback sent along."""


YES = frozenset({"approve", "approved", "yes", "y", "ok", "okay", "go", "go ahead"})
"""Text replies that approve (a chat or A2A client may answer a pause in words)."""


def _decision(raw: Any, kind: Kind) -> Answer | None:
    """The single decision of a HITL response (``{"decisions": [...]}``); None for other shapes.

    A text reply is a decision too: "approve" / "yes" / "ok" approves, any other text
    rejects with the text as the reason."""
    if isinstance(raw, str):
        text = raw.strip()
        return Answer("approve") if text.lower().rstrip(".!") in YES else Answer("reject", message=text)
    if isinstance(raw, Mapping) and "decisions" in raw:
        decisions = raw["decisions"]
    elif isinstance(raw, Mapping) and raw.get("type") in ("approve", "edit", "reject", "respond"):
        decisions = [raw]  # a bare decision (LangChain's per-call shape)
    else:
        return None
    if not isinstance(decisions, list) or len(decisions) != 1 or not isinstance(decisions[0], Mapping):
        raise InvalidAnswer("expected exactly one decision for the one action under review")
    decision = decisions[0]
    what = decision.get("type")
    if what not in ALLOWED[kind]:
        raise InvalidAnswer(f"decision {what!r} is not allowed here; allowed: {ALLOWED[kind]}")
    message = decision.get("message") or ""
    if not isinstance(message, str):
        raise InvalidAnswer("a decision's message must be text")
    if what != "edit":
        return Answer(cast(Literal["approve", "reject"], what), message=message.strip())
    edited = decision.get("edited_action")
    if not isinstance(edited, Mapping) or not isinstance(edited.get("args"), Mapping):
        raise InvalidAnswer("an edit needs edited_action with the action's name and args")
    return Answer("edit", args=dict(edited["args"]))


def _legacy(raw: Any, actions: Mapping[str, Literal["approve", "edit", "reject"]]) -> Answer:
    """An answer in the older ``{"action": ..., ...}`` shape."""
    if not isinstance(raw, Mapping) or raw.get("action") not in actions:
        raise InvalidAnswer(
            f"unrecognised answer {raw!r}; expected {{\"decisions\": [{{\"type\": \"approve\"}}]}}"
            " (or edit / reject)"
        )
    return Answer(actions[raw["action"]], args=dict(raw),
                  message=str(raw.get("feedback") or raw.get("instruction") or "").strip())


_ACTIONS: dict[str, Literal["approve", "edit", "reject"]] = {
    "approve": "approve", "edit": "edit", "reject": "reject",
}


@dataclass(frozen=True)
class PlanAnswer:
    """The answer to a plan review."""

    action: Literal["approve", "edit", "reject"]
    tasks: list[dict[str, Any]] | None = None
    feedback: str = ""


def read_plan_answer(raw: Any) -> PlanAnswer:
    """The plan review's answer; ``InvalidAnswer`` when it is none (the review asks again)."""
    answer = _decision(raw, "plan_review") or _legacy(raw, _ACTIONS)
    if answer.type != "edit":
        return PlanAnswer(answer.type, feedback=answer.message)
    tasks = answer.args.get("tasks")
    if not isinstance(tasks, list):
        raise InvalidAnswer("an edited plan needs its tasks: a list of task objects")
    return PlanAnswer("edit", tasks=tasks)


def read_tool_answer(raw: Any) -> tuple[bool, str]:
    """(approved, feedback) for a tool approval. Anything unclear is a rejection, so nothing
    runs by mistake; ``{"approved": bool}`` and a bare bool are accepted too."""
    if isinstance(raw, bool):
        return raw, ""
    if isinstance(raw, str):  # words never approve a side effect: only a decision does
        return False, raw.strip() or "no approval given"
    try:
        answer = _decision(raw, "tool_approval")
    except InvalidAnswer as err:
        return False, f"invalid approval answer: {err}"
    if answer is not None:
        return answer.type == "approve", answer.message
    if isinstance(raw, Mapping):
        approved = raw.get("approved")
        feedback = str(raw.get("feedback") or "").strip()
        if isinstance(approved, bool):
            return approved, feedback
        return False, feedback or f"unrecognised approval answer {raw!r}"
    return False, f"unrecognised approval answer {raw!r}"


@dataclass(frozen=True)
class AnswerReview:
    """The answer to a final-answer review."""

    action: Literal["approve", "edit", "reject"]
    answer: str = ""
    feedback: str = ""


def read_answer_review(raw: Any) -> AnswerReview:
    """The final-answer review's answer; an invalid one approves the answer as it stands."""
    try:
        answer = _decision(raw, "answer_review") or _legacy(raw, _ACTIONS)
    except InvalidAnswer:
        return AnswerReview("approve")
    text = answer.args.get("answer")
    return AnswerReview(answer.type, answer=text if isinstance(text, str) else "",
                        feedback=answer.message)


@dataclass(frozen=True)
class FailureAnswer:
    """The answer at a failed task."""

    action: Literal["retry", "edit", "skip", "abort"]
    instruction: str = ""
    note: str = ""
    """Why the answer was read as it was (an invalid answer is a skip)."""


_FAILURE = {"approve": "retry", "edit": "edit", "reject": "skip"}


def read_failure_answer(raw: Any) -> FailureAnswer:
    """The answer at a failed task; an invalid one skips the task (and says so in ``note``).
    ``{"action": "abort"}`` (the older shape) aborts the run."""
    try:
        answer = _decision(raw, "task_failure")
        if answer is None:
            if isinstance(raw, Mapping) and raw.get("action") in ("retry", "skip", "abort"):
                legacy = cast(Literal["retry", "skip", "abort"], raw["action"])
                return FailureAnswer(legacy, str(raw.get("instruction") or ""))
            answer = _legacy(raw, {"edit": "edit"})
    except InvalidAnswer:
        return FailureAnswer("skip", note=f"invalid answer {raw!r}; skipped")
    instruction = answer.args.get("instruction")
    action = cast(Literal["retry", "edit", "skip"], _FAILURE[answer.type])
    return FailureAnswer(action, instruction if isinstance(instruction, str) else "")


# -- resume values (what clients send) ----------------------------------------------------------


@dataclass(frozen=True)
class ReviewDecision:
    """What a human decided at a pause, whatever the pause."""

    action: Literal["approve", "edit", "reject"]
    tasks: list[dict[str, Any]] | None = None
    """Edited plan tasks (edit at a plan review)."""
    text: str = ""
    """Feedback (reject), or the edited answer / instruction (edit)."""


def kind_of(interrupt_value: Any) -> str | None:
    """Which pause an interrupt value is (None for a value of no kind we know)."""
    kind = interrupt_value.get("type") if isinstance(interrupt_value, Mapping) else None
    return kind if kind in INTERRUPT_TYPES else None


def check_decision(interrupt_value: Any, decision: ReviewDecision) -> None:
    """Raise ``InvalidAnswer`` (with a message fit for a user) if the pause cannot take it."""
    kind = kind_of(interrupt_value)
    if kind is None:
        raise InvalidAnswer(f"unknown pause {interrupt_value!r}; expected one of {INTERRUPT_TYPES}")
    if decision.action not in ALLOWED[kind]:
        raise InvalidAnswer(f"a {kind.replace('_', ' ')} can only be "
                            + " or ".join(f"{d}d" if d.endswith("e") else f"{d}ed" for d in ALLOWED[kind]))
    if kind == "plan_review" and decision.action == "edit" and decision.tasks is None:
        raise InvalidAnswer("editing a plan needs the edited tasks")


def resume_value(interrupt_value: Any, decision: ReviewDecision) -> HITLResponse:
    """The answer (a HITL response) that tells the paused node ``decision``."""
    check_decision(interrupt_value, decision)
    action = interrupt_value["action_requests"][0]["name"] if interrupt_value.get(
        "action_requests") else {"plan_review": PLAN_ACTION, "answer_review": ANSWER_ACTION,
                                 "task_failure": RETRY_ACTION}.get(interrupt_value["type"], "")
    one: Decision
    if decision.action == "approve":
        one = {"type": "approve"}
    elif decision.action == "reject":
        one = {"type": "reject", "message": decision.text} if decision.text else {"type": "reject"}
    else:
        kind = interrupt_value["type"]
        args: dict[str, Any] = (
            {"tasks": decision.tasks} if kind == "plan_review"
            else {"answer": decision.text} if kind == "answer_review"
            else {**interrupt_value.get("action_requests", [{}])[0].get("args", {}),
                  "instruction": decision.text}
        )
        one = {"type": "edit", "edited_action": {"name": action, "args": args}}
    answer: dict[str, Any] = {"decisions": [one]}
    if isinstance(interrupt_value.get(QUESTION_FIELD), str):
        answer[QUESTION_FIELD] = interrupt_value[QUESTION_FIELD]
    return cast("HITLResponse", answer)


def check_resume_ids(pending_ids: Sequence[str], answered_ids: Sequence[str]) -> None:
    """``InvalidAnswer`` naming the pending interrupt ids when an answer names an id that is
    not pending (LangGraph would drop it and leave the pause as it was, saying nothing)."""
    unknown = [i for i in answered_ids if i not in pending_ids]
    if unknown:
        waiting = ", ".join(pending_ids) if pending_ids else "none"
        raise InvalidAnswer(f"no pending interrupt {', '.join(map(repr, unknown))}; pending: {waiting}")


def answers_other_question(raw: Any, request: Mapping[str, Any]) -> bool:
    """Whether the answer ``raw`` names a question other than ``request``'s (it was meant
    for another pause); an answer that names none is taken for this one."""
    named = raw.get(QUESTION_FIELD) if isinstance(raw, Mapping) else None
    return named is not None and named != request.get(QUESTION_FIELD)


def describe(interrupt_value: Any) -> str:
    """The reviewer's text for a pause (the request's description), for terminals and logs."""
    if isinstance(interrupt_value, Mapping):
        for request in interrupt_value.get("action_requests") or []:
            if isinstance(request, Mapping) and request.get("description"):
                return str(request["description"])
    return json.dumps(interrupt_value, default=str)[:500]
