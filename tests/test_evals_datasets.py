"""The datasets: they load, have enough examples, and their references are consistent with
the agents, the shipped knowledge base and the sample customer database."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from agents.registry import AgentRegistry
from evals.datasets import (
    DatasetError,
    dataset_names,
    load_dataset,
    load_manifest,
    reference_problems,
)
from evals.evaluators import EVALUATOR_NAMES, METRIC_KEYS, SCORE_KEYS
from evals.evaluators.answer import mentions
from evals.runner import PASSED_KEY
from tools.context import CUSTOMER_SEED_SQL, SAMPLE_KB_DIR

SCENARIOS = {"planning", "software", "research", "customer_service"}


def test_every_scenario_has_at_least_ten_examples() -> None:
    names = dataset_names()
    assert set(names) >= SCENARIOS
    for name in names:
        dataset = load_dataset(name)
        first = [e for e in dataset.examples if e.paraphrase_of is None]
        assert len(first) >= (10 if name in SCENARIOS else 6), name
        assert dataset.version.startswith(f"v{dataset.entry.version}-")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_references_are_consistent(name: str) -> None:
    dataset = load_dataset(name)
    assert reference_problems(dataset, AgentRegistry.builtin().names(), SAMPLE_KB_DIR) == []


def test_manifest_names_real_evaluators_and_thresholds() -> None:
    for name, entry in load_manifest().items():
        assert set(entry.evaluators) <= set(EVALUATOR_NAMES), name
        produced = {key for ev in entry.evaluators for key in SCORE_KEYS[ev]} | {PASSED_KEY}
        assert set(entry.thresholds.min) <= produced - set(METRIC_KEYS), name
        assert set(entry.thresholds.max) <= set(METRIC_KEYS), name


def test_research_facts_come_from_the_cited_documents() -> None:
    """Research examples are answerable from the shipped knowledge base."""
    for ex in load_dataset("research").examples:
        ref = ex.outputs
        docs = " ".join((SAMPLE_KB_DIR / s).read_text(encoding="utf-8") for s in ref["sources"])
        for fact in ref["key_facts"]:
            assert mentions(docs, fact), (ex.id, fact)
            assert mentions(ref["answer"], fact), (ex.id, fact)


def test_customer_service_examples_match_the_sample_database() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(CUSTOMER_SEED_SQL.read_text(encoding="utf-8"))
    ids = {
        row[0]
        for table in ("customers", "orders", "tickets")
        for row in conn.execute(f"SELECT id FROM {table}")
    }
    totals = dict(conn.execute("SELECT id, total_cents FROM orders").fetchall())
    for ex in load_dataset("customer_service").examples:
        for ref_id in re.findall(r"\b[COT]\d{3,4}\b", ex.goal):
            assert ref_id in ids, (ex.id, ref_id)
        for fact in ex.outputs.get("key_facts", []):
            assert mentions(ex.outputs["answer"], fact), (ex.id, fact)
        for phrase in ex.outputs.get("forbidden", []):
            assert not mentions(ex.outputs["answer"], phrase), (ex.id, phrase)
        for refund in ex.outputs["actions"]["refunds"]:
            assert all(0 < a <= totals[refund["order_id"]] for a in refund["amounts_cents"])


def test_examples_become_langsmith_examples_with_stable_ids() -> None:
    dataset = load_dataset("planning")
    first, again = dataset.to_langsmith(), load_dataset("planning").to_langsmith()
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == len(first)
    assert (
        first[0].metadata is not None and first[0].metadata["example_id"] == dataset.examples[0].id
    )
    assert first[0].inputs == {"goal": dataset.examples[0].goal}
    assert len(dataset.select(limit=2).examples) == 2
    with pytest.raises(DatasetError, match="no example"):
        dataset.select(["nope"])


def test_changed_data_gets_a_new_version_and_new_ids(tmp_path: Path) -> None:
    src = load_dataset("planning")
    shutil.copy(src.path.parent / "manifest.toml", tmp_path / "manifest.toml")
    lines = src.path.read_text(encoding="utf-8").splitlines()
    changed = json.loads(lines[0])
    changed["inputs"]["goal"] += " Be brief."
    for name in dataset_names():
        shutil.copy(src.path.parent / load_manifest()[name].file, tmp_path)
    (tmp_path / src.path.name).write_text(
        "\n".join([json.dumps(changed), *lines[1:]]) + "\n", encoding="utf-8"
    )
    copy = load_dataset("planning", tmp_path / "manifest.toml")
    assert copy.version != src.version
    assert copy.to_langsmith()[1].id != src.to_langsmith()[1].id


def test_bad_lines_are_reported_with_their_line_number(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text(
        '[datasets.bad]\nfile = "bad.jsonl"\nversion = 1\nkind = "run"\nevaluators = []\n',
        encoding="utf-8",
    )
    (tmp_path / "bad.jsonl").write_text(
        '{"id": "a", "inputs": {"goal": "x"}}\n{"id": "b", "inputs": {}}\n'
    )
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: inputs"):
        load_dataset("bad", tmp_path / "manifest.toml")
    (tmp_path / "bad.jsonl").write_text(
        '{"id": "a", "inputs": {"goal": "x"}}\n{"id": "a", "inputs": {"goal": "y"}}\n'
    )
    with pytest.raises(DatasetError, match="duplicate id"):
        load_dataset("bad", tmp_path / "manifest.toml")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("missing", tmp_path / "manifest.toml")


def test_a_users_jsonl_file_is_a_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from evals.datasets import DatasetError, load_dataset

    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"id": "a", "inputs": {"goal": "What is BM25?"}, '
        '"outputs": {"key_facts": ["BM25"], "sources": ["x.md"]}}\n'
    )
    ds = load_dataset(str(path))
    assert ds.name == "mine" and ds.entry.kind == "run" and len(ds.examples) == 1
    assert ds.entry.evaluators == ["key_facts", "source_recall", "run_metrics"]
    plans = tmp_path / "plans.jsonl"
    plans.write_text('{"id": "p", "inputs": {"goal": "g"}, "outputs": {"plan": {"min_tasks": 1}}}\n')
    assert load_dataset(str(plans)).entry.kind == "planning"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    import pytest

    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: not JSON"):
        load_dataset(str(bad))
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_dataset(str(tmp_path / "missing.jsonl"))
