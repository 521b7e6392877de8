"""The evaluators themselves: good outputs score high, bad ones score low.

Runs offline and fast: the LLM judges use the deterministic test model with a scripted
verdict, code runs in the real sandbox. ``@pytest.mark.langsmith`` records these as a
LangSmith test suite when tracking is on (``LANGSMITH_TEST_TRACKING`` unset and a key set).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

import pytest
from langchain_core.messages import BaseMessage

from core.models.factory import LocalChatOpenAI
from core.models.test_model import TestChatModel
from evals.datasets import load_dataset
from evals.evaluators import build_evaluators
from evals.evaluators.actions import actions
from evals.evaluators.answer import key_facts, mentions
from evals.evaluators.code import code_tests, project_files
from evals.evaluators.judge import (
    make_correctness,
    make_groundedness,
    resolve_citation,
    source_recall,
    structured_output_kwargs,
)
from evals.evaluators.metrics import run_cost
from evals.evaluators.plan import make_plan_validity, plan_properties, planner_clean
from evals.evaluators.trajectory import make_trajectory, waves
from tools.context import SAMPLE_KB_DIR

AGENTS = ["researcher", "coder", "analyst", "writer", "reviewer", "support"]
plan_validity = make_plan_validity(AGENTS, max_tasks=12)
trajectory = make_trajectory()


def task(id: str, agent: str, deps: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": id, "agent": agent, "instruction": f"do {id}", "depends_on": list(deps)}


def by_key(result: Any) -> dict[str, Any]:
    items = result.get("results", [result])
    return {r["key"]: r for r in items}


GOOD_PLAN = [task("t1", "researcher"), task("t2", "researcher"), task("t3", "writer", ("t1", "t2"))]


# -- plan ----------------------------------------------------------------------------------


@pytest.mark.langsmith
def test_valid_plan_scores_full_marks() -> None:
    scores = by_key(plan_validity({"plan": GOOD_PLAN}))
    assert scores["plan_valid"]["score"] == 1.0
    assert scores["plan_dependencies"]["score"] == 1.0


@pytest.mark.langsmith
def test_cyclic_plan_is_invalid() -> None:
    plan = [task("t1", "researcher", ("t2",)), task("t2", "writer", ("t1",))]
    scores = by_key(plan_validity({"plan": plan}))
    assert scores["plan_valid"]["score"] == 0.0
    assert "cycle" in scores["plan_valid"]["comment"]


@pytest.mark.langsmith
def test_unknown_agent_makes_the_plan_invalid() -> None:
    plan = [task("t1", "poet"), task("t2", "writer", ("t1",))]
    scores = by_key(plan_validity({"plan": plan}))
    assert scores["plan_valid"]["score"] == 0.0
    assert "unknown agent 'poet'" in scores["plan_valid"]["comment"]


@pytest.mark.langsmith
def test_dangling_dependency_and_duplicate_ids_are_invalid() -> None:
    assert (
        by_key(plan_validity({"plan": [task("t1", "coder", ("t9",))]}))["plan_valid"]["score"]
        == 0.0
    )
    assert (
        by_key(plan_validity({"plan": [task("t1", "coder"), task("t1", "writer")]}))["plan_valid"][
            "score"
        ]
        == 0.0
    )


@pytest.mark.langsmith
def test_no_plan_and_oversized_plan_score_zero() -> None:
    assert by_key(plan_validity({"plan": []}))["plan_valid"]["score"] == 0.0
    assert by_key(plan_validity({}))["plan_valid"]["score"] == 0.0
    huge = [task(f"t{i}", "coder") for i in range(13)]
    assert by_key(plan_validity({"plan": huge}))["plan_valid"]["score"] == 0.0


@pytest.mark.langsmith
def test_implausible_dependencies_lower_the_score() -> None:
    # The writer depends on nothing and the research feeds nothing.
    plan = [task("t1", "researcher"), task("t2", "writer")]
    scores = by_key(plan_validity({"plan": plan}))
    assert scores["plan_valid"]["score"] == 1.0
    assert scores["plan_dependencies"]["score"] == 0.0
    assert "depends on nothing" in scores["plan_dependencies"]["comment"]


SPEC = {
    "min_tasks": 2,
    "max_tasks": 4,
    "required_agents": ["researcher", "writer"],
    "forbidden_agents": ["support"],
    "orderings": [["researcher", "writer"]],
    "min_parallel": 2,
}


@pytest.mark.langsmith
def test_plan_properties_hold_for_a_good_plan() -> None:
    result = plan_properties({"plan": GOOD_PLAN}, {"plan": SPEC})
    assert result["score"] == 1.0, result["comment"]


@pytest.mark.langsmith
def test_plan_properties_catch_missing_agents_orderings_and_parallelism() -> None:
    plan = [task("t1", "writer"), task("t2", "support", ("t1",))]
    result = plan_properties({"plan": plan}, {"plan": SPEC})
    assert result["score"] is not None and result["score"] <= 0.4
    for problem in (
        "no researcher task",
        "has a support task",
        "researcher -> writer",
        "in parallel",
    ):
        assert problem in (result["comment"] or "")
    # A writer that does not depend on the research breaks the ordering.
    loose = [task("t1", "researcher"), task("t2", "researcher"), task("t3", "writer")]
    assert "does not depend" in (plan_properties({"plan": loose}, {"plan": SPEC})["comment"] or "")
    assert plan_properties({"plan": GOOD_PLAN}, {})["score"] is None  # not applicable


def test_planner_first_try() -> None:
    assert planner_clean({"planner_attempts": 1, "plan_reason": "planned"})["score"] == 1.0
    repaired = {
        "planner_attempts": 1,
        "plan_reason": "planned; task t1: dropped dependency on itself",
    }
    assert planner_clean(repaired)["score"] == 0.0
    assert planner_clean({"planner_attempts": 3, "plan_reason": "planned"})["score"] == 0.0


# -- trajectory ----------------------------------------------------------------------------


def step(
    task_id: str, agent: str, start: float, end: float, status: str = "done"
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "agent": agent,
        "status": status,
        "started_at": start,
        "ended_at": end,
    }


REF = {
    "trajectory": {
        "agents": ["researcher", "researcher", "writer"],
        "orderings": [["researcher", "writer"]],
    }
}


@pytest.mark.langsmith
def test_trajectory_tolerates_parallel_order() -> None:
    # t2 started first; t1 and t2 overlap (one wave); the writer follows both.
    run = [
        step("t2", "researcher", 0.0, 2.0),
        step("t1", "researcher", 0.1, 1.5),
        step("t3", "writer", 2.1, 3.0),
    ]
    scores = by_key(trajectory({"goal": "g"}, {"trajectory": run}, REF))
    assert scores["trajectory_agents"]["score"] == 1.0
    assert scores["trajectory_order"]["score"] == 1.0
    assert [[s["task_id"] for s in w] for w in waves(run)] == [["t2", "t1"], ["t3"]]


@pytest.mark.langsmith
def test_wrong_agents_fail_the_trajectory() -> None:
    run = [step("t1", "coder", 0.0, 1.0), step("t2", "writer", 1.1, 2.0)]
    scores = by_key(trajectory({"goal": "g"}, {"trajectory": run}, REF))
    assert scores["trajectory_agents"]["score"] == 0.0
    assert scores["trajectory_order"]["score"] == 0.0  # researcher never ran


@pytest.mark.langsmith
def test_wrong_order_fails_the_ordering() -> None:
    run = [
        step("t3", "writer", 0.0, 1.0),
        step("t1", "researcher", 1.1, 2.0),
        step("t2", "researcher", 1.1, 2.0),
    ]
    scores = by_key(trajectory({"goal": "g"}, {"trajectory": run}, REF))
    assert scores["trajectory_agents"]["score"] == 1.0
    assert scores["trajectory_order"]["score"] == 0.0
    assert "started before" in scores["trajectory_order"]["comment"]


def test_tasks_that_never_ran_do_not_count() -> None:
    run = [step("t1", "researcher", 0.0, 1.0), step("t2", "researcher", 0, 0, status="skipped")]
    scores = by_key(
        trajectory(
            {"goal": "g"},
            {"trajectory": run},
            {"trajectory": {"agents": ["researcher", "researcher"]}},
        )
    )
    assert scores["trajectory_agents"]["score"] == 0.0


# -- LLM judges ------------------------------------------------------------------------------


def scripted_judge(decide: Any) -> TestChatModel:
    """A test-model judge whose verdict is computed from the prompt it receives."""

    def verdict(messages: list[BaseMessage]) -> dict[str, Any]:
        prompt = "\n".join(str(m.content) for m in messages)
        ok = bool(decide(prompt))
        return {"reasoning": f"Thus, the score should be: {str(ok).lower()}.", "score": ok}

    return TestChatModel(responses={"score": verdict})


def answer_part(prompt: str) -> str:
    return prompt.split("<answer>")[1].split("</answer>")[0]


# The scripted judge marks an answer correct when it states the reference's number of days.
days_judge = scripted_judge(lambda p: "30 days" in answer_part(p))
QUESTION = {"goal": "How long do customers have to return an item?"}
REFERENCE = {"answer": "Within 30 days of delivery."}


@pytest.mark.langsmith
async def test_correctness_accepts_an_answer_matching_the_reference() -> None:
    result = await make_correctness(days_judge)(
        QUESTION, {"answer": "Customers have 30 days from delivery."}, REFERENCE
    )
    assert result["score"] == 1.0


@pytest.mark.langsmith
async def test_correctness_rejects_an_answer_contradicting_the_reference() -> None:
    result = await make_correctness(days_judge)(
        QUESTION, {"answer": "Returns are accepted for 90 days."}, REFERENCE
    )
    assert result["score"] == 0.0
    assert "score should be: false" in (result["comment"] or "")


async def test_correctness_without_answer_or_reference() -> None:
    grade = make_correctness(days_judge)
    assert (await grade(QUESTION, {"answer": ""}, REFERENCE))["score"] == 0.0
    assert (await grade(QUESTION, {"answer": "x"}, {}))["score"] is None


async def test_a_failing_judge_gives_no_score() -> None:
    broken = TestChatModel(responses={"score": {"reasoning": "no score field"}})
    result = await make_correctness(broken)(QUESTION, {"answer": "30 days"}, REFERENCE)
    assert result["score"] is None
    assert "judge" in (result["comment"] or "")


@pytest.mark.langsmith
async def test_groundedness_judges_against_the_cited_lines() -> None:
    citation = "[refund-policy.md#Eligibility and time limits L8-9]"
    seen: list[str] = []

    def supported(prompt: str) -> bool:
        seen.append(prompt)
        return "30 days of delivery" in prompt and "30 days" in answer_part(prompt)

    grade = make_groundedness(scripted_judge(supported), kb_dir=SAMPLE_KB_DIR)
    good = await grade(
        {"answer": "Refunds within 30 days of delivery.", "citations": [citation]}, {}
    )
    assert good["score"] == 1.0
    assert "refund-policy.md" in (good["comment"] or "")
    assert "Processing time" not in seen[0]  # only the cited lines, not the whole document
    bad = await grade({"answer": "Refunds within 90 days.", "citations": [citation]}, {})
    assert bad["score"] == 0.0
    # No citations: the reference sources are the context; nothing at all: not applicable.
    fallback = await grade(
        {"answer": "Refunds within 30 days of delivery."}, {"sources": ["refund-policy.md"]}
    )
    assert fallback["score"] == 1.0 and "(reference)" in (fallback["comment"] or "")
    assert (await grade({"answer": "x"}, {}))["score"] is None


def test_citations_resolve_to_lines_sections_or_documents() -> None:
    lines = resolve_citation("[refund-policy.md#Eligibility and time limits L8-9]", SAMPLE_KB_DIR)
    assert (
        lines is not None
        and "30 days of delivery" in lines.text
        and len(lines.text.splitlines()) == 2
    )
    heading = resolve_citation("refund-policy.md#Approval limits", SAMPLE_KB_DIR)
    assert (
        heading is not None
        and heading.text.startswith("## Approval limits")
        and "Processing" not in heading.text
    )
    assert resolve_citation("[nowhere.md]", SAMPLE_KB_DIR) is None
    assert resolve_citation("[../../etc/passwd.md]", SAMPLE_KB_DIR) is None


def test_source_recall() -> None:
    ref = {"sources": ["refund-policy.md", "escalation-policy.md"]}
    assert source_recall({"citations": ["[refund-policy.md#Amounts L1-2]"]}, ref)["score"] == 0.5
    assert (
        source_recall(
            {"citations": [], "answer": "see escalation-policy.md and refund-policy.md"}, ref
        )["score"]
        == 1.0
    )
    assert source_recall({}, {})["score"] is None


# -- deterministic answer checks and actions ---------------------------------------------------


@pytest.mark.langsmith
def test_key_facts_and_forbidden_claims() -> None:
    ref = {
        "key_facts": ["$1,299.00", "30 days|thirty days", "team lead"],
        "forbidden": ["not eligible"],
    }
    good = by_key(key_facts({"answer": "It cost 1299 and is eligible within thirty days."}, ref))
    assert good["key_facts"]["score"] == pytest.approx(2 / 3, abs=1e-3)
    assert "team lead" in good["key_facts"]["comment"]
    assert good["no_forbidden"]["score"] == 1.0
    bad = by_key(key_facts({"answer": "The order is not eligible."}, ref))
    assert bad["key_facts"]["score"] == 0.0 and bad["no_forbidden"]["score"] == 0.0
    assert mentions("order O1001", "O1001") and not mentions("order O10011", "O1001")


@pytest.mark.langsmith
def test_actions_expect_the_right_refunds_only() -> None:
    ref = {
        "actions": {
            "refunds": [{"order_id": "O1008", "amounts_cents": [5205]}],
            "tickets": {"T503": "escalated"},
        }
    }
    right = {
        "db_changes": {
            "refunds": [{"order_id": "O1008", "amount_cents": 5205}],
            "tickets": {"T503": {"to": "escalated"}},
        }
    }
    assert actions(right, ref)["score"] == 1.0
    wrong_amount = {
        "db_changes": {"refunds": [{"order_id": "O1008", "amount_cents": 5900}], "tickets": {}}
    }
    assert actions(wrong_amount, ref)["score"] == pytest.approx(1 / 3, abs=1e-3)
    none_expected: dict[str, Any] = {"actions": {"refunds": []}}
    assert actions({"db_changes": None}, none_expected)["score"] == 1.0
    unexpected = {"db_changes": {"refunds": [{"order_id": "O1003", "amount_cents": 66100}]}}
    result = actions(unexpected, none_expected)
    assert result["score"] == 0.0 and "O1003" in (result["comment"] or "")


# -- code ------------------------------------------------------------------------------------

CODE_REF = {
    "code": {
        "entrypoint": "add",
        "filename": "add.py",
        "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"],
    }
}


@pytest.mark.langsmith
async def test_code_that_passes_the_hidden_tests() -> None:
    result = await code_tests({"files": {"add.py": "def add(a, b):\n    return a + b\n"}}, CODE_REF)
    assert result["score"] == 1.0, result["comment"]


@pytest.mark.langsmith
async def test_code_whose_tests_fail_scores_low() -> None:
    answer = "Here it is:\n```python\ndef add(a, b):\n    return a * b\n```"
    result = await code_tests({"answer": answer}, CODE_REF)
    assert result["score"] == pytest.approx(1 / 3, abs=1e-3)
    assert "answer block 1" in (result["comment"] or "")
    assert (await code_tests({"answer": "I could not do it."}, CODE_REF))["score"] == 0.0


async def test_code_that_hangs_or_escapes_is_contained() -> None:
    hang = "def add(a, b):\n    while True:\n        pass\n"
    quick = {"code": {**CODE_REF["code"], "tests": ["assert add(1, 2) == 3"], "check_timeout_s": 1}}
    result = await code_tests({"files": {"add.py": hang}}, quick)
    assert result["score"] == 0.0 and "TimeoutError" in (result["comment"] or "")
    sneaky = "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=1)\ndef add(a, b):\n    return a + b\n"
    result = await code_tests({"files": {"add.py": sneaky}}, CODE_REF)
    assert "loading the code raised" in (result["comment"] or "")


async def test_reference_solutions_pass_their_hidden_tests() -> None:
    """Every software example's hidden tests are satisfiable (checked on its reference solution)."""
    dataset = load_dataset("software")
    results = await asyncio.gather(
        *[
            code_tests(
                {"files": {ex.outputs["code"]["filename"]: ex.outputs["code"]["solution"]}},
                ex.outputs,
            )
            for ex in dataset.examples
        ]
    )
    failed = {
        ex.id: r["comment"]
        for ex, r in zip(dataset.examples, results, strict=True)
        if r["score"] != 1.0
    }
    assert not failed


# -- metrics and the registry ----------------------------------------------------------------


def test_run_metrics_are_reported_as_scores() -> None:
    outputs = {
        "status": "completed",
        "metrics": {"cost_usd": 0.01, "tokens": 1200, "latency_s": 3.5, "model_calls": 4},
    }
    scores = by_key(run_cost(outputs))
    assert scores["tokens"]["score"] == 1200 and scores["latency_s"]["score"] == 3.5
    assert scores["completed"]["score"] == 1.0
    assert "completed" not in by_key(run_cost({"status": "planned", "metrics": {}}))
    # A run cut off by the time limit lasted the wall time, not its last checkpoint's.
    cut = by_key(run_cost({"status": "time-out", "wall_s": 500.2, "metrics": {"latency_s": 417.9}}))
    assert cut["latency_s"]["score"] == 500.2 and cut["completed"]["score"] == 0.0
    ran = by_key(run_cost({**outputs, "wall_s": 9.0}))
    assert ran["latency_s"]["score"] == 3.5  # a finished run keeps its own latency


def test_build_evaluators_checks_names_and_judge() -> None:
    with pytest.raises(ValueError, match="unknown evaluator"):
        build_evaluators(["nope"])
    with pytest.raises(ValueError, match="judge"):
        build_evaluators(["correctness"])
    assert len(build_evaluators(["plan_validity", "trajectory"], agents=AGENTS)) == 2


def test_the_judge_asks_each_model_the_way_it_answers() -> None:
    """The embedded server ignores a forced named tool call (the verdict came back empty:
    TypeError) and writes a reasoning field to the token cap: there the judge uses
    JSON-schema decoding and asks for the score alone."""
    class JsonSchemaJudge(TestChatModel):
        structured_output_method: ClassVar[Literal["json_schema"]] = "json_schema"

    assert LocalChatOpenAI.structured_output_method == "json_schema"
    assert structured_output_kwargs(TestChatModel()) == {"method": "function_calling"}
    assert structured_output_kwargs(JsonSchemaJudge()) == {"method": "json_schema"}


def test_project_files_counts_the_stated_modules_the_design_and_the_readme(tmp_path: Any) -> None:
    from evals.target import workspace_files

    ref = {"code": {"entrypoint": "Cart", "filename": "cart.py", "tests": ["assert True"], "modules": ["money.py"]}}
    for name in ("money.py", "cart.py", "design.json", "README.md", "notes.txt"):
        (tmp_path / name).write_text("x")
    files = workspace_files(tmp_path)
    assert set(files) == {"money.py", "cart.py", "design.json", "README.md"}  # documents read, others not
    got = project_files({"files": files}, ref)
    assert got["score"] == 0.8 and got["comment"] == "missing: DESIGN.md"
    one_module = {"code": {"entrypoint": "f", "filename": "f.py", "tests": ["assert True"]}}
    assert project_files({"files": files}, one_module)["score"] is None
