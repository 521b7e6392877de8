"""Specialist sub-graphs with the deterministic TestChatModel and the real tools.

Models are injected through ``build_specialist(spec, model_factory=...)``; settings (test
models, limits, review, a per-test data_dir) travel in the run's ``configurable`` exactly
as the supervisor passes them.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, Send

from agents import AgentRegistry, AgentSpec, base_settings, build_specialist, parse_approval
from agents.steps import STEP_SCHEMA_NAME
from core.models import TestChatModel
from core.settings import Settings
from tests.scripting import context_of

REGISTRY = AgentRegistry.builtin()
TEST_MODELS = {
    "ts": {"provider": "test", "model": "ts", "tool_mode": "structured"},
    "tn": {"provider": "test", "model": "tn", "tool_mode": "native"},
}


def run_config(tmp_path: Path, mode: str = "structured", **overrides: Any) -> RunnableConfig:
    """A run's config: test models, a private data_dir, settings overrides."""
    settings: dict[str, Any] = {
        "model": "ts" if mode == "structured" else "tn",
        "models": TEST_MODELS,
        "data_dir": str(tmp_path),
        **overrides,
    }
    return {"configurable": {"thread_id": f"run-{uuid.uuid4().hex[:8]}", "settings": settings}}


class Models:
    """A model factory: one model for the worker's role, another for the reviewer."""

    def __init__(self, worker: TestChatModel, reviewer: TestChatModel | None = None) -> None:
        self.worker = worker
        self.reviewer = reviewer or TestChatModel(responses={"Verdict": {"passed": True}})
        self.roles: list[str] = []

    def __call__(self, settings: Settings, role: str) -> TestChatModel:
        self.roles.append(role)
        return self.reviewer if role == "reviewer" else self.worker


class Seq:
    """Scripted structured replies in order (the last repeats); records each prompt."""

    def __init__(self, *replies: dict[str, Any] | Callable[[list[BaseMessage]], dict[str, Any]]):
        self.replies = list(replies)
        self.seen: list[list[BaseMessage]] = []

    def __call__(self, messages: list[BaseMessage]) -> dict[str, Any]:
        self.seen.append(list(messages))
        reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        return reply(messages) if callable(reply) else reply


class Recorder(AsyncCallbackHandler):
    """Collects the prompts of every chat model call (proves config/callbacks propagate)."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.extend(messages)


def step(action: str, thought: str = "", **action_input: Any) -> dict[str, Any]:
    return {"thought": thought or f"use {action}", "action": action, "action_input": action_input}


def final(answer: str, *citations: str) -> dict[str, Any]:
    return {
        "thought": "done",
        "action": "final_answer",
        "action_input": {},
        "answer": answer,
        "citations": list(citations),
    }


def task(agent: str, instruction: str, criteria: str = "", task_id: str = "t1") -> dict[str, Any]:
    return {
        "id": task_id,
        "agent": agent,
        "instruction": instruction,
        "acceptance_criteria": criteria,
        "depends_on": [],
    }


def text_of(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


async def run(
    spec: AgentSpec, models: Models, config: RunnableConfig, the_task: dict[str, Any], **inputs: Any
) -> dict[str, Any]:
    # These tests are about the tool loop: the step flows have their own (test_agents_flows.py).
    graph = build_specialist(spec.model_copy(update={"flow": "loop"}), model_factory=models)
    return await graph.ainvoke(
        {"task": the_task, "goal": "", "context": "", "feedback": "", **inputs}, config, context=context_of(config)
    )


# -- the loop, both tool modes ------------------------------------------------------------------


async def test_structured_tool_then_answer(tmp_path: Path) -> None:
    def answer(messages: list[BaseMessage]) -> dict[str, Any]:
        result = text_of(messages)
        assert "Result of search_knowledge_base:" in result and "refund-policy.md" in result
        return final("Refunds are accepted within 30 days of delivery.", "[refund-policy.md]")

    seq = Seq(step("search_knowledge_base", query="refund window days"), answer)
    models = Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq}))
    out = await run(
        REGISTRY.get("researcher"),
        models,
        run_config(tmp_path),
        task("researcher", "How long is the refund window?"),
        context="## Result of task t0 (analyst)\nNothing relevant.",
    )
    assert out.pop("usage")["model_calls"] == 2
    assert out == {
        "output": "Refunds are accepted within 30 days of delivery.",
        "citations": ["[refund-policy.md]"],
        "artifacts": [],
        "steps": 2,
        "error": None,
    }
    first = text_of(seq.seen[0])
    assert "search_knowledge_base(query: string, k?: integer)" in first  # tool listing
    assert "How long is the refund window?" in first and "Nothing relevant." in first
    assert set(models.roles) == {"researcher"}  # no criteria: no reviewer call


async def test_native_tool_then_answer(tmp_path: Path) -> None:
    worker = TestChatModel(
        script=[
            AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "write_file",
                        "args": {"path": "./out/hello.py", "content": "print('hi')"},
                        "id": "c1",
                    }
                ],
            ),
            AIMessage(
                "",
                tool_calls=[{"name": "run_python", "args": {"code": "print(6 * 7)"}, "id": "c2"}],
            ),
            AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "FinalAnswer",
                        "args": {"answer": "42; wrote out/hello.py"},
                        "id": "c3",
                    }
                ],
            ),
        ]
    )
    recorder = Recorder()
    config = run_config(tmp_path, mode="native")
    config["callbacks"] = [recorder]
    out = await run(REGISTRY.get("coder"), Models(worker), config, task("coder", "Compute 6*7."))
    assert out["output"] == "42; wrote out/hello.py"
    assert out["artifacts"] == ["out/hello.py"] and out["steps"] == 3 and out["error"] is None
    assert len(recorder.prompts) == 3
    last = recorder.prompts[-1]
    tool_results = [m for m in last if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_results] == ["c1", "c2"]
    assert "42" in str(tool_results[1].content)
    workspace = tmp_path / "workspaces" / config["configurable"]["thread_id"]
    assert (workspace / "out" / "hello.py").read_text() == "print('hi')"


async def test_native_plain_text_reply_is_the_answer(tmp_path: Path) -> None:
    worker = TestChatModel(script=[AIMessage("Paris is the capital of France.")])
    out = await run(
        REGISTRY.get("writer"),
        Models(worker),
        run_config(tmp_path, mode="native"),
        task("writer", "Capital?"),
    )
    assert out["output"] == "Paris is the capital of France." and out["steps"] == 1


@pytest.mark.parametrize("mode", ["structured", "native"])
async def test_max_steps_then_forced_final_answer(tmp_path: Path, mode: str) -> None:
    n = {"i": 0}

    def search(messages: list[BaseMessage]) -> dict[str, Any]:
        n["i"] += 1
        return step("search_knowledge_base", query=f"shipping topic {n['i']}")

    forced = Seq(
        {
            "answer": "Best effort: standard shipping takes 3-5 days.",
            "citations": ["[shipping-policy.md]"],
        }
    )
    worker = TestChatModel(
        responses={STEP_SCHEMA_NAME: search, "FinalAnswer": forced},
        script=[
            AIMessage(
                "",
                tool_calls=[
                    {"name": "search_knowledge_base", "args": {"query": f"q{i}"}, "id": f"c{i}"}
                ],
            )
            for i in range(3)
        ]
        if mode == "native"
        else [],
    )
    out = await run(
        REGISTRY.get("researcher"),
        Models(worker),
        run_config(tmp_path, mode=mode, limits={"max_agent_steps": 3}),
        task("researcher", "Shipping times?"),
    )
    assert out["output"] == "Best effort: standard shipping takes 3-5 days."
    assert out["citations"] == ["[shipping-policy.md]"]
    assert out["steps"] == 4  # three tool steps, then the forced answer
    assert "You have used all your steps" in text_of(forced.seen[0])


async def test_invalid_tool_args_become_observations(tmp_path: Path) -> None:
    def answer(messages: list[BaseMessage]) -> dict[str, Any]:
        seen = text_of(messages)
        assert "Error: invalid arguments for search_knowledge_base" in seen
        assert "query" in seen
        return final("I could not search.")

    seq = Seq(step("search_knowledge_base", k="many"), answer)
    out = await run(
        REGISTRY.get("researcher"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq})),
        run_config(tmp_path),
        task("researcher", "Find something."),
    )
    assert out["output"] == "I could not search." and out["error"] is None


async def test_native_unknown_tool_and_bad_json_become_observations(tmp_path: Path) -> None:
    worker = TestChatModel(
        script=[
            AIMessage(
                "",
                tool_calls=[{"name": "launch_rockets", "args": {}, "id": "c1"}],
                invalid_tool_calls=[
                    {
                        "name": "read_file",
                        "args": "{path:",
                        "id": "c2",
                        "error": "bad JSON",
                        "type": "invalid_tool_call",
                    }
                ],
            ),
            AIMessage(
                "", tool_calls=[{"name": "FinalAnswer", "args": {"answer": "done"}, "id": "c3"}]
            ),
        ]
    )
    recorder = Recorder()
    config = run_config(tmp_path, mode="native")
    config["callbacks"] = [recorder]
    out = await run(REGISTRY.get("writer"), Models(worker), config, task("writer", "Write."))
    assert out["output"] == "done"
    seen = text_of(recorder.prompts[-1])
    assert "there is no tool 'launch_rockets'" in seen
    assert "unreadable arguments" in seen


async def test_unparseable_structured_reply_is_a_note_not_a_crash(tmp_path: Path) -> None:
    seq = Seq(
        {"thought": "?", "action": "fly_away"},
        {"thought": "?", "action": "fly_away"},
        {"thought": "?", "action": "fly_away"},
        final("Recovered."),
    )
    out = await run(
        REGISTRY.get("writer"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq})),
        run_config(tmp_path),
        task("writer", "Write."),
    )
    assert out["output"] == "Recovered." and out["steps"] == 2
    assert "Your last reply was not a valid step" in text_of(seq.seen[-1])


async def test_repeated_call_is_not_rerun(tmp_path: Path) -> None:
    query = step("search_knowledge_base", query="warranty")
    seq = Seq(query, query, final("Two years.", "[warranty-policy.md]"))
    await run(
        REGISTRY.get("researcher"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq})),
        run_config(tmp_path),
        task("researcher", "Warranty?"),
    )
    assert "You already made this exact call" in text_of(seq.seen[-1])


async def test_prompt_fits_a_small_context_window(tmp_path: Path) -> None:
    models = {
        "tiny": {
            "provider": "test",
            "model": "tiny",
            "tool_mode": "structured",
            "context_window": 2048,
            "max_tokens": 256,
        }
    }
    seq = Seq(*(step("search_knowledge_base", query=f"policy {i}") for i in range(4)), final("ok"))
    out = await run(
        REGISTRY.get("researcher"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq})),
        run_config(tmp_path, model="tiny", models=models),
        task("researcher", "Summarize the policies."),
        context="x " * 20_000,
    )
    assert out["output"] == "ok"
    from core.text import estimate_tokens

    assert all(estimate_tokens(p) <= 2048 - 256 for p in seq.seen)
    assert "[… truncated]" in text_of(seq.seen[-1])


def test_compiled_graph_is_cached() -> None:
    spec = REGISTRY.get("writer")
    assert build_specialist(spec) is build_specialist(spec)
    other = spec.model_copy(update={"prompt": "Different."})
    assert build_specialist(other) is not build_specialist(spec)


def test_parse_approval() -> None:
    assert parse_approval({"approved": True}) == (True, "")
    assert parse_approval({"approved": False, "feedback": " no "}) == (False, "no")
    assert parse_approval(True) == (True, "")
    assert parse_approval("yes")[0] is False  # anything unclear is a rejection
    assert parse_approval({"approved": "yes"})[0] is False


# -- high-risk tools: approval through a real checkpointer ------------------------------------


class Parent(TypedDict, total=False):
    task: dict[str, Any]
    result: dict[str, Any]


def supervisor_like(spec: AgentSpec, models: Models) -> Any:
    """A parent graph whose node invokes the specialist, like the supervisor's run_task."""
    sub = build_specialist(spec, model_factory=models)

    async def run_task(state: Parent, config: RunnableConfig) -> dict[str, Any]:
        out = await sub.ainvoke(
            {"task": state["task"], "goal": "", "context": "", "feedback": ""}, config, context=context_of(config)
        )
        return {"result": out}

    builder = StateGraph(Parent)
    builder.add_node("run_task", run_task)
    builder.add_edge(START, "run_task")
    return builder.compile(checkpointer=InMemorySaver())


def refunds(tmp_path: Path, order_id: str = "O1001") -> int:
    assert (tmp_path / "customer_service.sqlite").exists()
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM refunds WHERE order_id=?", (order_id,)).fetchone()[0]
        )


def ticket_status(tmp_path: Path, ticket_id: str = "T501") -> str:
    with sqlite3.connect(tmp_path / "customer_service.sqlite") as conn:
        return str(
            conn.execute("SELECT status FROM tickets WHERE id=?", (ticket_id,)).fetchone()[0]
        )


REFUND = step("issue_refund", order_id="O1001", amount=20.0, reason="left ear cup crackles")
SUPPORT_TASK = task("support", "Refund $20 on order O1001 and resolve ticket T501.")


async def test_high_risk_actions_approved_run_exactly_once(tmp_path: Path) -> None:
    seq = Seq(
        step("lookup_order", order_id="O1001"),
        REFUND,
        step("update_ticket", ticket_id="T501", status="resolved", note="Refunded $20."),
        final("Refunded $20 on O1001 and resolved T501."),
    )
    worker = TestChatModel(responses={STEP_SCHEMA_NAME: seq}, tokens_in=100, tokens_out=10)
    graph = supervisor_like(REGISTRY.get("support"), Models(worker))
    config = run_config(tmp_path)

    first = await graph.ainvoke({"task": SUPPORT_TASK}, config, context=context_of(config))
    (pause,) = first["__interrupt__"]
    # The customer the request is about, set by code (O1001 is C001's), rides with the call.
    refund_args = {"order_id": "O1001", "amount": 20.0, "reason": "left ear cup crackles",
                   "acting_for": "C001"}
    assert {k: pause.value[k] for k in ("type", "task_id", "agent", "tool", "args")} == {
        "type": "tool_approval", "task_id": "t1", "agent": "support", "tool": "issue_refund",
        "args": refund_args,
    }
    # LangChain's HITL request: the action, its allowed decisions, and what the agent found.
    (action,) = pause.value["action_requests"]
    assert action["name"] == "issue_refund" and action["args"] == refund_args
    assert "lookup_order" in action["description"]
    assert "Records this action touches: order O1001 of customer C001." in action["description"]
    assert pause.value["review_configs"] == [
        {"action_name": "issue_refund", "allowed_decisions": ["approve", "reject"]}
    ]
    assert refunds(tmp_path) == 0  # the lookup ran; the refund waits for the answer

    second = await graph.ainvoke(Command(resume={"approved": True}), config, context=context_of(config))
    (pause,) = second["__interrupt__"]
    assert pause.value["tool"] == "update_ticket"
    assert refunds(tmp_path) == 1

    # Resuming re-runs the parent node; the refund must not run again.
    done = await graph.ainvoke(Command(resume={"approved": True, "feedback": "ok"}), config, context=context_of(config))
    assert done["result"]["output"] == "Refunded $20 on O1001 and resolved T501."
    assert refunds(tmp_path) == 1
    assert ticket_status(tmp_path) == "resolved"
    assert "Refund #" in text_of(seq.seen[-1])
    # Usage covers the calls made before each pause, not just the last segment.
    assert done["result"]["usage"] == {"tokens_in": 400, "tokens_out": 40, "model_calls": 4}


async def test_high_risk_action_rejected_never_runs(tmp_path: Path) -> None:
    seq = Seq(
        step("lookup_order", order_id="O1001"),
        REFUND,
        REFUND,
        final("No refund was issued: a reviewer rejected it."),
    )
    graph = supervisor_like(
        REGISTRY.get("support"), Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq}))
    )
    config = run_config(tmp_path, mode="structured")

    first = await graph.ainvoke({"task": SUPPORT_TASK}, config, context=context_of(config))
    assert first["__interrupt__"][0].value["tool"] == "issue_refund"
    # The model repeats the rejected refund: it is refused again without asking anyone.
    done = await graph.ainvoke(
        Command(resume={"approved": False, "feedback": "customer already got store credit"}), config, context=context_of(config)
    )
    assert "__interrupt__" not in done
    assert done["result"]["output"].startswith("No refund was issued")
    assert refunds(tmp_path) == 0
    assert len(seq.seen) == 4
    seen = text_of(seq.seen[2])
    assert "Rejected by a human reviewer" in seen and "customer already got store credit" in seen


async def test_native_high_risk_approval(tmp_path: Path) -> None:
    worker = TestChatModel(
        script=[
            AIMessage(
                "",
                tool_calls=[{"name": "issue_refund", "args": REFUND["action_input"], "id": "r1"}],
            ),
            AIMessage(
                "",
                tool_calls=[{"name": "FinalAnswer", "args": {"answer": "Refunded."}, "id": "f1"}],
            ),
        ]
    )
    graph = supervisor_like(REGISTRY.get("support"), Models(worker))
    config = run_config(tmp_path, mode="native")
    first = await graph.ainvoke({"task": SUPPORT_TASK}, config, context=context_of(config))
    assert first["__interrupt__"][0].value["tool"] == "issue_refund"
    done = await graph.ainvoke(Command(resume={"approved": True}), config, context=context_of(config))
    assert done["result"]["output"] == "Refunded." and refunds(tmp_path) == 1


async def test_high_risk_without_review_runs_directly(tmp_path: Path) -> None:
    seq = Seq(REFUND, final("Refunded."))
    out = await run(
        REGISTRY.get("support"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq})),
        run_config(tmp_path, review={"high_risk_tools": False}),
        SUPPORT_TASK,
    )
    assert out["output"] == "Refunded." and refunds(tmp_path) == 1


class Fanout(TypedDict, total=False):
    tasks: list[dict[str, Any]]
    results: Annotated[list[dict[str, Any]], operator.add]


async def test_parallel_tasks_pause_and_resume_independently(tmp_path: Path) -> None:
    """Two tasks fanned out with Send both wait for approval; each resumes by interrupt id."""

    def by_task(messages: list[BaseMessage]) -> dict[str, Any]:
        prompt = text_of(messages)
        order = "O1001" if "(t1)" in prompt else "O1006"
        if "Result of issue_refund" in prompt:
            return final(f"handled {order}")
        return step("issue_refund", order_id=order, amount=10.0, reason="damaged item")

    sub = build_specialist(
        REGISTRY.get("support"),
        model_factory=Models(TestChatModel(responses={STEP_SCHEMA_NAME: by_task})),
    )

    async def run_task(payload: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        out = await sub.ainvoke({"task": payload["task"]}, config, context=context_of(config))
        return {"results": [out]}

    builder = StateGraph(Fanout)
    builder.add_node("run_task", run_task, input_schema=Fanout)  # type: ignore[arg-type]
    builder.add_conditional_edges(
        START, lambda s: [Send("run_task", {"task": t}) for t in s["tasks"]], ["run_task"]
    )
    graph = builder.compile(checkpointer=InMemorySaver())
    config = run_config(tmp_path)
    tasks = [
        task("support", "Refund O1001.", task_id="t1"),
        task("support", "Refund O1006.", task_id="t2"),
    ]

    first = await graph.ainvoke({"tasks": tasks}, config, context=context_of(config))
    pauses = {i.value["task_id"]: i for i in first["__interrupt__"]}
    assert set(pauses) == {"t1", "t2"}
    done = await graph.ainvoke(
        Command(
            resume={
                pauses["t1"].id: {"approved": True},
                pauses["t2"].id: {"approved": False, "feedback": "no"},
            }
        ),
        config, context=context_of(config),
    )
    assert sorted(r["output"] for r in done["results"]) == ["handled O1001", "handled O1006"]
    assert refunds(tmp_path, "O1001") == 1 and refunds(tmp_path, "O1006") == 0


# -- verification --------------------------------------------------------------------------------

CRITERIA = "States the refund window in days and cites the refund policy."


async def test_verification_fail_then_rework_then_pass(tmp_path: Path) -> None:
    worker = Seq(
        final("Refunds are possible."),
        final("Refunds are accepted within 30 days of delivery.", "[refund-policy.md]"),
    )
    verdicts = Seq(
        {"passed": False, "feedback": "The answer does not give the number of days."},
        {"passed": True, "feedback": ""},
    )
    models = Models(
        TestChatModel(responses={STEP_SCHEMA_NAME: worker}),
        TestChatModel(responses={"Verdict": verdicts}),
    )
    out = await run(
        REGISTRY.get("researcher"),
        models,
        run_config(tmp_path),
        task("researcher", "Refund window?", CRITERIA),
    )
    assert out["output"] == "Refunds are accepted within 30 days of delivery."
    assert out["verification"] == {"passed": True, "feedback": ""}
    assert out["error"] is None and out["steps"] == 2
    rework = text_of(worker.seen[1])
    assert "A reviewer rejected it: The answer does not give the number of days." in rework
    assert "Refunds are possible." in rework
    review = text_of(verdicts.seen[0])
    assert CRITERIA in review and "Refunds are possible." in review
    assert models.roles.count("reviewer") == 2
    assert out["usage"]["model_calls"] == 4  # two worker steps, two reviews


async def test_verification_fails_every_time(tmp_path: Path) -> None:
    worker = Seq(final("Refunds are possible."))
    verdicts = Seq({"passed": False, "feedback": "No number of days."})
    out = await run(
        REGISTRY.get("researcher"),
        Models(
            TestChatModel(responses={STEP_SCHEMA_NAME: worker}),
            TestChatModel(responses={"Verdict": verdicts}),
        ),
        run_config(tmp_path, limits={"max_verification_attempts": 2}),
        task("researcher", "Refund window?", CRITERIA),
    )
    assert len(verdicts.seen) == 3  # the first check and two re-checks after rework
    assert out["verification"] == {"passed": False, "feedback": "No number of days."}
    assert out["error"] == "failed verification: No number of days."
    assert out["output"] == "Refunds are possible."


async def test_verification_skipped_without_criteria_or_when_off(tmp_path: Path) -> None:
    verdicts = Seq({"passed": False, "feedback": "never"})
    models = Models(
        TestChatModel(responses={STEP_SCHEMA_NAME: Seq(final("A."))}),
        TestChatModel(responses={"Verdict": verdicts}),
    )
    out = await run(
        REGISTRY.get("writer"),
        models,
        run_config(tmp_path, verify_results=False),
        task("writer", "Write A.", CRITERIA),
    )
    assert out["output"] == "A." and "verification" not in out and not verdicts.seen


async def test_reviewer_sees_context_and_tool_evidence(tmp_path: Path) -> None:
    verdicts = Seq({"passed": True})
    seq = Seq(
        step("search_knowledge_base", query="refund window"),
        final("30 days.", "[refund-policy.md]"),
    )
    await run(
        REGISTRY.get("researcher"),
        Models(
            TestChatModel(responses={STEP_SCHEMA_NAME: seq}),
            TestChatModel(responses={"Verdict": verdicts}),
        ),
        run_config(tmp_path),
        task("researcher", "Refund window?", CRITERIA),
        context="## Result of task t0 (support)\nOrder O1001 was delivered 15 days ago.",
    )
    review = text_of(verdicts.seen[0])
    assert "Cited sources: [refund-policy.md]" in review
    evidence = review.split("Evidence (what the worker was given and found):")[1]
    assert "Order O1001 was delivered 15 days ago." in evidence
    assert "search_knowledge_base: " in evidence and "refund-policy.md" in evidence


async def test_reviewer_without_a_verdict_does_not_fail_the_task(tmp_path: Path) -> None:
    broken = TestChatModel(responses={"Verdict": {"passed": "perhaps"}})
    out = await run(
        REGISTRY.get("writer"),
        Models(TestChatModel(responses={STEP_SCHEMA_NAME: Seq(final("A."))}), broken),
        run_config(tmp_path),
        task("writer", "Write A.", CRITERIA),
    )
    assert out["output"] == "A." and out["error"] is None
    assert out["verification"]["passed"] is True
    assert out["verification"]["feedback"].startswith("not verified: no valid Verdict")


async def test_no_valid_forced_answer_is_an_error(tmp_path: Path) -> None:
    worker = TestChatModel(
        responses={
            STEP_SCHEMA_NAME: lambda m: step("search_knowledge_base", query=f"q{len(m)}"),
            "FinalAnswer": {"answer": ""},
        }
    )
    out = await run(
        REGISTRY.get("researcher"),
        Models(worker),
        run_config(tmp_path, limits={"max_agent_steps": 1}),
        task("researcher", "Anything."),
    )
    assert out["error"] == "no final answer: the answer was empty" and out["steps"] == 2


# -- the event loop is never blocked ---------------------------------------------------------------


async def test_nodes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    blockbuster = pytest.importorskip("blockbuster")
    spec = REGISTRY.get("coder")
    seq = Seq(
        step("write_file", path="a.txt", content="hello"),
        step("read_file", path="a.txt"),
        step("list_files"),
        step("run_python", code="print(open('a.txt').read())"),
        final("hello", "a.txt"),
    )
    models = Models(TestChatModel(responses={STEP_SCHEMA_NAME: seq}))
    config = run_config(tmp_path)
    graph = build_specialist(spec.model_copy(update={"flow": "loop"}), model_factory=models)
    base_settings()  # the process's settings are loaded once, outside the loop in a server
    # Like the LangGraph dev server: every module is scanned, not just ours.
    with blockbuster.blockbuster_ctx():
        out = await graph.ainvoke(
            {"task": task("coder", "Write hello to a.txt and print it.")}, config, context=context_of(config)
        )
    assert out["output"] == "hello" and out["artifacts"] == ["a.txt"]
    assert "hello" in json.dumps(
        [str(m.content) for m in seq.seen[-1] if isinstance(m, HumanMessage)]
    )
