"""Synthesis: one answer from the task results, attributed; optional human review of it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents import RunContext
from agents.profile import ModelProfile
from core import review
from core.models import achat_model
from core.settings import Settings
from core.text import truncate_to_tokens
from core.usage import track_usage
from graph import prompts
from graph.intake import answer_message
from graph.planning.planner import learn_from
from graph.runtime import context_for, emit, run_context
from graph.state import OrchestratorState

SYNTHESIS_SHARE = 0.6
"""Share of the supervisor model's context window given to the task results."""


FinalStatus = Literal["completed", "stopped", "failed"]
"""How a run that reached synthesis ended (``graph.state.RunStatus`` has the rest)."""

ANSWERED = ("completed", "stopped")
"""Final statuses with an answer built from done tasks (a human may review it)."""


def unfinished(values: Mapping[str, Any]) -> str:
    """The plan's tasks that are not done, each with its status and error, in plan order:
    the reason of a stop that no budget or cap named (a failure escalation gave up on)."""
    results: Mapping[str, Any] = values.get("results") or {}
    parts = []
    for task in values.get("tasks") or []:
        record = results.get(task.get("id", "")) or {}
        status = str(record.get("status") or "never started")
        if status == "done":
            continue
        error = f": {record['error']}" if record.get("error") else ""
        parts.append(f"{task.get('id')} {status}{error}")
    return "tasks not done: " + "; ".join(parts) if parts else ""


def final_status(values: Mapping[str, Any]) -> tuple[FinalStatus, str]:
    """The truthful end of a run and why: ``completed`` only when every task of its plan is
    done; ``stopped`` when some are done and others never started, were skipped or failed
    (the reason: the recorded ``stop_reason`` — a budget, a cap, an abort, the supervisor's
    early finish — else the tasks not done); ``failed`` when none is done.

    Read from state values alone, so threads saved before ``stopped`` existed get it too;
    a run without a plan keeps its recorded status."""
    results: Mapping[str, Any] = values.get("results") or {}
    ids = [str(t.get("id", "")) for t in values.get("tasks") or []]
    done = [tid for tid in ids if (results.get(tid) or {}).get("status") == "done"]
    reason = str(values.get("stop_reason") or "") or unfinished(values)
    if not ids:  # no plan to judge by: the recorded status stands
        return ("completed", "") if values.get("status") == "completed" else ("failed", reason)
    if len(done) == len(ids):
        return "completed", ""
    if not done:
        return "failed", reason
    return "stopped", reason


def results_digest(state: OrchestratorState, budget_tokens: int) -> str:
    """Task results in plan order, each cut to an equal share of the budget."""
    results = state.get("results", {})
    order = [t["id"] for t in state.get("tasks", [])]
    share = max(budget_tokens // max(len(order), 1), 50)
    blocks = []
    for task_id in order:
        record = results.get(task_id, {})
        status = record.get("status", "pending")
        agent = record.get("task", {}).get("agent", "?")
        if status == "done":
            body = truncate_to_tokens(record.get("output", ""), share)
            if record.get("citations"):
                body += "\nSources: " + "; ".join(record["citations"])
        elif str(record.get("output") or "").strip():
            why = f": {record['error']}" if record.get("error") else ""
            body = (f"(partial result: the task {status}{why})\n"
                    + truncate_to_tokens(str(record["output"]), share))
        else:
            body = f"(no result: {status}{': ' + str(record['error']) if record.get('error') else ''})"
        blocks.append(f"[{task_id}] {agent}:\n{body}")
    return "\n\n".join(blocks)


def assembled(state: OrchestratorState, budget_tokens: int) -> str:
    """The work itself, from the task records: each done task's output (code and test run,
    cited answer, actions taken), the files written, the sources cited; a failed task's work
    shown as a partial result (and which dependents used it); failures without work named."""
    results = state.get("results", {})
    order = [t["id"] for t in state.get("tasks", [])]
    dependents: dict[str, list[str]] = {}
    for t in state.get("tasks", []):
        for dep in t.get("depends_on") or []:
            dependents.setdefault(dep, []).append(t["id"])
    share = max(budget_tokens // max(len(order), 1), 200)
    blocks: list[str] = []
    sources: list[str] = []
    files: list[str] = []
    for task_id in order:
        record = results.get(task_id, {})
        agent = record.get("task", {}).get("agent", "?")
        status = record.get("status", "pending")
        if status != "done":
            why = f": {record['error']}" if record.get("error") else ""
            made = str(record.get("output") or "").strip()
            if made or record.get("artifacts"):  # what it made, e.g. code whose tests failed
                users = [t for t in dependents.get(task_id, []) if results.get(t, {}).get("status") == "done"]
                used = f"; used as such by {', '.join(users)}" if users else ""
                blocks.append(f"**{task_id} ({agent})**: partial result — the task {status}{why}{used}")
                if made:
                    blocks.append(truncate_to_tokens(made, share))
                sources += [c for c in record.get("citations") or [] if c not in sources and c not in made]
                files += [f for f in record.get("artifacts") or [] if f not in files]
            else:
                blocks.append(f"**{task_id} ({agent})**: no result ({status}{why})")
            continue
        body = truncate_to_tokens(str(record.get("output", "")).strip(), share)
        blocks.append(body if len(order) == 1 else f"**{task_id} ({agent})**\n\n{body}")
        sources += [c for c in record.get("citations") or [] if c not in sources and c not in body]
        files += [f for f in record.get("artifacts") or [] if f not in files]
    if sources:
        blocks.append("Sources:\n" + "\n".join(f"- {c}" for c in sources))
    if files and len(order) > 1:
        blocks.append("Files written: " + ", ".join(files))
    return "\n\n".join(blocks)


async def synthesize(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[str]:
    """The final answer (``compose_answer``, below); then the human review of it, or the end.

    The run ends in this step when no review of the answer is due (``review.final_answer``
    off, or no completed answer to review): a ``review_answer`` step would only decide that,
    and cost a step and its checkpoint."""
    settings, _ = await run_context(runtime, state)
    update = await compose_answer(state, settings, context_for(runtime, state).profile)
    results = state.get("results", {})
    if update.get("status") == "completed" and all(
        results.get(t.get("id", ""), {}).get("status") == "done" for t in state.get("tasks", [])
    ):
        await learn_from(state, settings)
    due = settings.review.final_answer and update.get("status") in ANSWERED
    return Command(goto="review_answer" if due else END, update=update)


async def compose_answer(
    state: OrchestratorState, settings: Settings, profile: ModelProfile
) -> dict[str, Any]:
    """The final answer: the task records assembled, after a short connecting text.

    The model writes only the connecting text (none for a one-task plan, or on a small model,
    whose summaries claim what the records do not show); the code, test results, citations
    and actions come from the records, so the answer never claims an action or a source
    the records do not show."""
    results = state.get("results", {})
    done = [r for r in results.values() if r.get("status") == "done"]
    emit("synthesizing", tasks_done=len(done))
    if not done:
        reasons = "; ".join(f"{tid}: {r.get('error')}" for tid, r in results.items() if r.get("error"))
        answer = "The run produced no results. " + (reasons or state.get("stop_reason", ""))
        if any(str(r.get("output") or "").strip() for r in results.values()):
            # A failed task's work stays visible: the code, and the test run that failed.
            budget = int(settings.model_for("supervisor").context_window * SYNTHESIS_SHARE)
            answer = "The run produced no results.\n\n" + assembled(state, budget)
        _, reason = final_status(state)
        return {"answer": answer, "status": "failed", "stop_reason": reason, "finished_at": time.time(),
                **answer_message(answer)}

    window = settings.model_for("supervisor").context_window
    status, reason = final_status(state)
    work = assembled(state, int(window * SYNTHESIS_SHARE))
    if status == "stopped":  # said in the answer too: a chat client shows only the answer
        work += f"\n\n_Stopped before the plan was done: {reason}_"
    update: dict[str, Any] = {"status": status, "stop_reason": reason, "finished_at": time.time(), "feedback": ""}
    if len(state.get("tasks", [])) <= 1 or not profile.model_synthesis:
        return {**update, "answer": work, **answer_message(work)}
    messages: list[BaseMessage] = [SystemMessage(prompts.SYNTHESIZER)]
    messages.append(HumanMessage(
        f"Goal: {state['goal']}\n\nTask results:\n{results_digest(state, int(window * SYNTHESIS_SHARE))}"
        + (f"\n\nReviewer's note on your previous answer: {state['feedback']}" if state.get("feedback") else "")
    ))
    with track_usage() as usage:
        reply = await (await achat_model(settings, "supervisor")).ainvoke(messages)
    intro = str(reply.content).strip() if reply.content else ""
    answer = f"{intro}\n\n---\n\n{work}" if intro else work
    return {
        **update, "answer": answer, **answer_message(answer),
        "usage": [usage.metrics(settings.model_for("supervisor"))],
    }


async def review_answer(state: OrchestratorState, runtime: Runtime[RunContext]) -> Command[str]:
    """Pause on the final answer when review.final_answer is on (``synthesize`` comes here
    only then; the check stays for threads saved before it did)."""
    settings, _ = await run_context(runtime, state)
    if not settings.review.final_answer or state.get("status") not in ANSWERED:
        return Command(goto=END)
    decision = review.read_answer_review(interrupt(review.answer_review_request(state.get("answer", ""))))
    if decision.action == "edit" and decision.answer.strip():
        return Command(goto=END, update={"answer": decision.answer, **answer_message(decision.answer)})
    if decision.action == "reject":
        return Command(goto="synthesize", update={"feedback": decision.feedback or "rejected"})
    return Command(goto=END)
