"""Dev/test splits, paraphrases, the new goal kinds and the held-out set: every dataset has
both splits (balanced by kind), every test goal has a paraphrase with exactly its
references, selection by split works end to end, and the new references are consistent
with the knowledge base, the sample database and the refund rules."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.registry import AgentRegistry
from core.settings import load_settings
from evals.datasets import (
    SPLITS,
    DatasetError,
    dataset_names,
    load_dataset,
    load_manifest,
    reference_problems,
)
from evals.evaluators.answer import mentions
from evals.evaluators.code import code_tests
from evals.runner import (
    PASSED_KEY,
    EvalReport,
    ExampleResult,
    paraphrase_gaps,
    pass_rate,
    render_examples,
    run_eval,
)
from evals.target import seed_workspace
from orchestrator.cli import eval_command
from tools.context import CUSTOMER_SEED_SQL, SAMPLE_KB_DIR
from tools.refund_rules import AGENT_REFUND_LIMIT_CENTS, refund_blocker

NEW_KINDS = {
    "cross_specialist",
    "multi_file",
    "bug_fix",
    "multi_doc_research",
    "multi_intent_support",
}
HELDOUT_KINDS = {
    "function-unusual-spec",
    "two-module-api",
    "bug-report-inline",
    "project-design-notes",
    "two-document-question",
    "comparison-table",
    "kb-rule-then-implement",
    "orders-analysis-summary",
    "support-question-and-action",
    "must-not-refund",
    "exact-amount-refund",
}
_FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def originals(name: str) -> list:  # type: ignore[type-arg]
    return [e for e in load_dataset(name).examples if e.paraphrase_of is None]


# -- splits --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", dataset_names())
def test_every_dataset_has_both_splits_balanced_by_kind(name: str) -> None:
    dataset = load_dataset(name)
    assert all(e.split in SPLITS for e in dataset.examples), name
    if dataset.entry.heldout:
        assert {e.split for e in dataset.examples} == {"test"}
        return
    first = originals(name)
    counts = Counter(e.split for e in first)
    assert counts["dev"] >= 3 and counts["test"] >= 3, counts
    assert abs(counts["dev"] - counts["test"]) <= 1, counts
    by_kind: dict[str, Counter[str]] = {}
    for e in first:
        by_kind.setdefault(e.metadata["tags"][0], Counter())[e.split or ""] += 1
    for kind, c in by_kind.items():
        assert abs(c["dev"] - c["test"]) <= 1, (name, kind, c)


def test_the_split_rule_is_the_documented_one() -> None:
    """Originals sorted by (kind, id) alternate dev, test, … (manifest.toml says so)."""
    for name in dataset_names():
        if load_manifest()[name].heldout:
            continue
        ordered = sorted(originals(name), key=lambda e: (e.metadata["tags"][0], e.id))
        assert [e.split for e in ordered] == [SPLITS[i % 2] for i in range(len(ordered))], name


def test_select_filters_by_split_and_refuses_examples_outside_it() -> None:
    dataset = load_dataset("software")
    dev, test = dataset.select(split="dev"), dataset.select(split="test")
    assert {e.split for e in dev.examples} == {"dev"} and {e.split for e in test.examples} == {
        "test"
    }
    assert len(dev.examples) + len(test.examples) == len(dataset.examples)
    assert dev.split == "dev" and dataset.select().split == "all"
    some_dev = dev.examples[0].id
    with pytest.raises(DatasetError, match="not in the test split"):
        dataset.select([some_dev], split="test")
    with pytest.raises(DatasetError, match="unknown split"):
        dataset.select(split="train")  # type: ignore[arg-type]
    assert len(dataset.select(split="test", limit=2).examples) == 2
    assert all(ex.metadata["split"] == "test" for ex in test.to_langsmith())


# -- paraphrases -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", dataset_names())
def test_every_test_goal_has_a_paraphrase_with_the_same_references(name: str) -> None:
    dataset = load_dataset(name)
    by_id = {e.id: e for e in dataset.examples}
    paraphrased = {e.paraphrase_of: e for e in dataset.examples if e.paraphrase_of}
    for e in dataset.examples:
        if e.paraphrase_of:
            origin = by_id[e.paraphrase_of]
            assert e.id == f"{origin.id}-p1"
            assert e.outputs == origin.outputs and e.split == origin.split == "test"
            assert e.goal != origin.goal
            assert {k: v for k, v in e.inputs.items() if k != "goal"} == {
                k: v for k, v in origin.inputs.items() if k != "goal"
            }
        elif e.split == "test" and not dataset.entry.heldout:
            assert e.id in paraphrased, (name, e.id)


def test_a_paraphrase_keeps_the_names_its_checks_need() -> None:
    """Hidden tests import names and files; support checks need the ids: the paraphrase
    must still state them."""
    for name in dataset_names():
        for e in load_dataset(name).examples:
            if not e.paraphrase_of:
                continue
            code = e.outputs.get("code")
            if code:
                assert code["entrypoint"] in e.goal, e.id
                for f in [code.get("filename"), *code.get("modules", [])]:
                    assert f is None or f in e.goal, (e.id, f)
            origin_ids = set(
                re.findall(
                    r"\b[COT]\d{3,4}\b",
                    load_dataset(name).select([e.paraphrase_of]).examples[0].goal,
                )
            )
            assert origin_ids <= set(re.findall(r"\b[COT]\d{3,4}\b", e.goal)), e.id


def _copy_datasets(tmp_path: Path) -> Path:
    src = load_dataset("planning").path.parent
    for path in src.iterdir():
        shutil.copy(path, tmp_path)
    return tmp_path / "manifest.toml"


def test_the_loader_rejects_a_paraphrase_that_measures_something_else(tmp_path: Path) -> None:
    manifest = _copy_datasets(tmp_path)
    path = tmp_path / "software.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    para = next(r for r in rows if r["metadata"].get("paraphrase_of"))
    para["outputs"]["code"]["tests"] = para["outputs"]["code"]["tests"][:1]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="references differ"):
        load_dataset("software", manifest)
    para["outputs"] = next(r for r in rows if r["id"] == para["metadata"]["paraphrase_of"])[
        "outputs"
    ]
    para["metadata"]["paraphrase_of"] = "software-99"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="names no example"):
        load_dataset("software", manifest)
    para["metadata"]["paraphrase_of"] = para["id"].removesuffix("-p1")
    para["metadata"]["split"] = "dev"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="is in split dev"):
        load_dataset("software", manifest)
    para["metadata"]["split"] = "train"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="metadata"):
        load_dataset("software", manifest)


# -- the new datasets' references -----------------------------------------------------------


def test_new_goal_kinds_and_heldout_are_in_the_manifest() -> None:
    manifest = load_manifest()
    assert NEW_KINDS | {"heldout"} <= set(manifest)
    for name in NEW_KINDS:
        assert len(originals(name)) >= 6, name
    heldout = load_dataset("heldout")
    assert manifest["heldout"].heldout and manifest["heldout"].kind == "run"
    assert len(heldout.examples) >= 14
    assert {e.metadata["tags"][0] for e in heldout.examples} == HELDOUT_KINDS
    assert PASSED_KEY in manifest["heldout"].thresholds.min
    for name in [*NEW_KINDS, "heldout"]:
        assert (
            reference_problems(load_dataset(name), AgentRegistry.builtin().names(), SAMPLE_KB_DIR)
            == []
        )


def test_heldout_goals_have_outcome_checks_only() -> None:
    for e in load_dataset("heldout").examples:
        out = e.outputs
        assert {"code"} <= set(out) or {"key_facts", "sources"} <= set(out), e.id
        assert not {"plan", "trajectory", "rubric"} & set(out), e.id


@pytest.mark.parametrize("name", ["cross_specialist", "multi_file", "bug_fix", "heldout"])
async def test_reference_solutions_pass_and_are_needed(name: str) -> None:
    """Each reference solution (with its modules) passes its hidden tests; without a module
    the checks fail; a bug report's inline code fails them."""
    for e in originals(name):
        spec = e.outputs.get("code")
        if not spec:
            continue
        files = {
            spec.get("filename") or "solution.py": spec["solution"],
            **spec.get("solution_files", {}),
        }
        result = await code_tests({"files": files}, e.outputs)
        assert result["score"] == 1.0, (e.id, result["comment"])
        if spec.get("modules"):
            alone = {spec["filename"]: spec["solution"]}
            result = await code_tests({"files": alone}, e.outputs)
            assert (result["score"] or 0) < 1.0 and "missing module" in (result["comment"] or ""), (
                e.id
            )
        buggy = _FENCE.findall(e.goal)
        if buggy:
            result = await code_tests({"answer": f"```python\n{buggy[0]}```"}, e.outputs)
            assert (result["score"] or 0) < 1.0, (e.id, "the buggy code passes the hidden tests")


def test_facts_come_from_the_cited_documents() -> None:
    for name in ["multi_doc_research", "multi_intent_support", "heldout"]:
        for e in originals(name):
            ref = e.outputs
            if "key_facts" not in ref:
                continue
            seeded = e.inputs.get("files") or {}
            docs = " ".join(
                seeded[s] if s in seeded else (SAMPLE_KB_DIR / s).read_text(encoding="utf-8")
                for s in ref["sources"]
            )
            for fact in ref["key_facts"]:
                assert mentions(ref["answer"], fact), (e.id, fact)
                if name == "multi_doc_research" or (
                    name == "heldout" and "actions" not in ref and not seeded
                ):
                    assert mentions(docs, fact), (e.id, fact)
    for e in originals("multi_doc_research"):
        assert len(e.outputs["sources"]) == 2, e.id


def test_orders_summary_reference_matches_its_data() -> None:
    (e,) = [x for x in originals("heldout") if x.inputs.get("files")]
    rows = [line.split(",") for line in e.inputs["files"]["orders.csv"].splitlines()[1:]]
    per_region: Counter[str] = Counter()
    for _, region, _, amount in rows:
        per_region[region] += round(float(amount) * 100)
    top, cents = per_region.most_common(1)[0]
    mean = sum(per_region.values()) / len(rows) / 100
    answer = e.outputs["answer"]
    assert (
        mentions(answer, top)
        and mentions(answer, f"{cents / 100:g}")
        and mentions(answer, f"{mean:.2f}")
    )


def _seed_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript(CUSTOMER_SEED_SQL.read_text(encoding="utf-8"))
    return conn


def test_support_references_follow_the_database_and_the_refund_rules() -> None:
    """Ids exist; an expected refund is one the rules allow an agent to issue (in the window,
    first refund, within what is left and the agent limit), for the amount the policy gives."""
    conn = _seed_db()
    ids = {
        row[0]
        for t in ("customers", "orders", "tickets")
        for row in conn.execute(f"SELECT id FROM {t}")
    }
    now = datetime.now(UTC)
    checked = 0
    for name in ["multi_intent_support", "heldout"]:
        for e in originals(name):
            actions = e.outputs.get("actions")
            if actions is None:
                continue
            for ref_id in re.findall(r"\b[COT]\d{3,4}\b", e.goal):
                assert ref_id in ids, (e.id, ref_id)
            for ticket in actions.get("tickets") or {}:
                assert ticket in e.goal, e.id
            for refund in actions["refunds"]:
                order = conn.execute(
                    "SELECT * FROM orders WHERE id=?", (refund["order_id"],)
                ).fetchone()
                refunded, count = conn.execute(
                    "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM refunds WHERE order_id=?",
                    (order["id"],),
                ).fetchone()
                assert refund_blocker(order, refunded, count, now) is None, e.id
                for cents in refund["amounts_cents"]:
                    assert (
                        0 < cents <= min(order["total_cents"] - refunded, AGENT_REFUND_LIMIT_CENTS)
                    )
                    assert mentions(e.outputs["answer"], f"{cents / 100:.2f}"), e.id
                checked += 1
            kind = e.metadata["tags"][0]
            if kind in ("no-refund", "must-not-refund"):
                assert actions["refunds"] == [], e.id
    assert checked >= 4


# -- the runner and the CLI -------------------------------------------------------------------


def test_an_example_passes_when_every_outcome_check_does() -> None:
    ok = ExampleResult("a", "g", {"code_tests": 1.0, "plan_valid": 0.0, "completed": 0.0}, {})
    partial = ExampleResult("b", "g", {"key_facts": 1.0, "source_recall": 0.5}, {})
    # None is "not applicable" (no reference for that check): not one of the example's checks.
    unscored = ExampleResult("c", "g", {"actions": None}, {})
    planning = ExampleResult("d", "g", {"plan_valid": 1.0}, {})
    support = ExampleResult("e", "g", {"code_tests": None, "key_facts": 1.0, "actions": 1.0}, {})
    assert ok.passed is True and partial.passed is False and support.passed is True
    assert planning.passed is None and unscored.passed is None
    stat = pass_rate([ok, partial, unscored, planning, support])
    assert stat is not None and stat.mean == pytest.approx(2 / 3, abs=1e-3) and stat.n == 3
    assert pass_rate([planning]) is None


def test_paraphrase_gaps_compare_pairs_that_both_ran() -> None:
    rows = [
        ExampleResult("x", "g", {"key_facts": 1.0, "tokens": 10.0}, {}, split="test"),
        ExampleResult(
            "x-p1", "g", {"key_facts": 0.5, "tokens": 99.0}, {}, split="test", paraphrase_of="x"
        ),
        ExampleResult("y-p1", "g", {"key_facts": 0.0}, {}, split="test", paraphrase_of="y"),
    ]
    assert paraphrase_gaps(rows) == {"key_facts": -0.5}
    assert paraphrase_gaps(rows[:1]) == {}


def test_the_per_example_table_shows_each_goal() -> None:
    from rich.console import Console

    rows = [
        ExampleResult(
            "h-1", "g", {"code_tests": 1.0, "latency_s": 12.0}, {}, status="completed", split="test"
        ),
        ExampleResult("h-2", "g", {"code_tests": 0.5}, {}, status="failed", split="test"),
    ]
    report = EvalReport(
        "heldout",
        "v1-x",
        "run",
        "test",
        None,
        "e",
        False,
        "2026-01-01T00:00:00+00:00",
        1.0,
        rows,
        {},
        [],
    )
    console = Console(record=True, width=200)
    console.print(render_examples(report))
    text = console.export_text()
    assert "1/2 passed" in text and re.search(r"h-1.*pass", text) and re.search(r"h-2.*FAIL", text)
    data = report.to_json()
    assert [r["passed"] for r in data["examples"]] == [True, False] and data["examples_passed"] == 1


async def test_a_run_records_its_split(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    report = await run_eval("planning", settings, model="test", split="test", limit=1, offline=True)
    assert report.split == "test"
    assert [e.split for e in report.examples] == ["test"]
    assert report.to_json()["split"] == "test"


def test_the_cli_takes_a_split() -> None:
    parser = argparse.ArgumentParser()
    eval_command.add_parsers(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["eval"]).split == "all"
    assert parser.parse_args(["eval", "--split", "dev", "--per-example"]).split == "dev"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--split", "train"])


def test_input_files_are_seeded_into_the_workspace_and_stay_inside_it(tmp_path: Path) -> None:
    seed_workspace(tmp_path / "ws", {"orders.csv": "a,b\n1,2\n", "sub/x.txt": "x"})
    assert (tmp_path / "ws" / "orders.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "ws" / "sub" / "x.txt").is_file()
    with pytest.raises(ValueError, match="outside the workspace"):
        seed_workspace(tmp_path / "ws", {"../escape.txt": "no"})
    assert not (tmp_path / "escape.txt").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "inputs": {"goal": "g", "files": {"../x": "y"}}}) + "\n")
    with pytest.raises(DatasetError, match="not a relative workspace path"):
        load_dataset(str(bad))
