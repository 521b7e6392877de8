"""Knowledge-base search: chunking, BM25 ranking with citations, incremental indexing."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from tools.context import SAMPLE_KB_DIR, ToolContext
from tools.knowledge_base import (
    KnowledgeBase,
    build_match_query,
    chunk_text,
    index_path_for,
    search_knowledge_base_tool,
)

CITATION = re.compile(r"\[([\w./-]+\.md)#([^\]]+) L(\d+)-(\d+)\]")


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    index = tmp_path_factory.mktemp("kb") / "index.sqlite"
    return KnowledgeBase(SAMPLE_KB_DIR, index)


@pytest.fixture
def kb_copy(tmp_path: Path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_KB_DIR, docs)
    return KnowledgeBase(docs, tmp_path / "index.sqlite")


def test_sample_corpus_is_substantial() -> None:
    docs = sorted(p.name for p in SAMPLE_KB_DIR.glob("*.md"))
    assert 8 <= len(docs) <= 12
    for name in ("refund-policy.md", "shipping-policy.md", "escalation-policy.md"):
        assert name in docs
    assert all(len((SAMPLE_KB_DIR / d).read_text()) > 1200 for d in docs)


def test_chunks_keep_headings_and_line_ranges() -> None:
    text = (SAMPLE_KB_DIR / "refund-policy.md").read_text()
    lines = text.splitlines()
    chunks = chunk_text(text, "refund-policy.md")
    assert len(chunks) >= 4
    for c in chunks:
        assert len(c.text) <= 1000
        # The passage text is exactly the non-blank lines of its range.
        span = [ln for ln in lines[c.line_start - 1 : c.line_end] if ln.strip()]
        assert [ln for ln in c.text.splitlines() if ln.strip()] == span
    headings = {c.heading for c in chunks}
    assert {"Eligibility and time limits", "Approval limits"} <= headings


def test_chunking_code_fences_and_long_paragraphs() -> None:
    text = "# T\n\n```\n# not a heading\n\nstill code\n```\n\n" + ("word " * 500) + "\n"
    chunks = chunk_text(text, "x.md")
    assert all(c.heading == "T" for c in chunks)
    assert "# not a heading\n\nstill code" in chunks[0].text
    assert max(len(c.text) for c in chunks) <= 1000 and len(chunks) >= 3


def test_txt_files_have_no_headings() -> None:
    chunks = chunk_text("# just text\n\nsecond para\n", "notes.txt", markdown=False)
    assert chunks[0].heading == "" and chunks[0].citation == "[notes.txt L1-3]"


@pytest.mark.parametrize(
    "query, doc",
    [
        ("how many days do customers have to return an item for a refund", "refund-policy.md"),
        ("package lost no tracking movement", "shipping-policy.md"),
        ("when to escalate a ticket to a team lead", "escalation-policy.md"),
        ("password reset link expires", "account-help.md"),
        ("battery capacity warranty claim", "warranty-policy.md"),
        ("BM25 inverted index term frequency", "full-text-vs-vector-search.md"),
        ("HNSW approximate nearest neighbour", "full-text-vs-vector-search.md"),
        (
            "chunk size citations retrieval augmented generation",
            "retrieval-augmented-generation.md",
        ),
        ("supervisor specialist workers plan DAG", "agent-orchestration-patterns.md"),
        ("LLM as judge bias rubric", "evaluating-llm-applications.md"),
        ("PostgreSQL write-ahead log fsync synchronous_commit", "sqlite-postgresql-durability.md"),
        ("prompt injection least privilege", "tool-use-safety.md"),
    ],
)
def test_search_finds_the_right_document(sample_kb: KnowledgeBase, query: str, doc: str) -> None:
    hits = sample_kb.search(query, k=3)
    assert hits and hits[0].passage.path == doc, [h.passage.citation for h in hits]


def test_citations_point_at_the_text(sample_kb: KnowledgeBase) -> None:
    for hit in sample_kb.search("refund window delivery", k=4):
        m = CITATION.fullmatch(hit.passage.citation)
        assert m, hit.passage.citation
        lines = (SAMPLE_KB_DIR / m.group(1)).read_text().splitlines()
        first = hit.passage.text.splitlines()[0]
        assert lines[int(m.group(3)) - 1] == first


@pytest.mark.parametrize(
    "query",
    ['refund AND OR NOT "', "NEAR(refund shipping", "col:refund*", "^refund -x +y", "'; DROP"],
)
def test_fts_syntax_in_queries_is_harmless(sample_kb: KnowledgeBase, query: str) -> None:
    assert sample_kb.search(query)  # no FTS5 syntax error, and the words still match


def test_build_match_query() -> None:
    assert build_match_query("What is the refund policy?") == '"refund" OR "policy"'
    assert build_match_query("the") == '"the"'
    assert build_match_query("!!! ???") is None


def test_incremental_reindex(kb_copy: KnowledgeBase) -> None:
    docs = kb_copy.kb_dir
    first = kb_copy.sync()
    n = first.added
    assert n == len(list(docs.glob("*.md"))) and first.updated == 0
    assert kb_copy.sync().unchanged == n  # nothing to do

    # Touch without editing: mtime differs, hash equal -> not re-chunked.
    os.utime(docs / "warranty-policy.md", ns=(1, 1))
    touched = kb_copy.sync()
    assert (touched.added, touched.updated, touched.removed) == (0, 0, 0)

    # Edit one file: only it is updated.
    path = docs / "shipping-policy.md"
    path.write_text(path.read_text() + "\n## Drones\n\nZorblax drone delivery is not offered.\n")
    edited = kb_copy.sync()
    assert (edited.updated, edited.unchanged) == (1, n - 1)
    hit = kb_copy.search("zorblax drone")[0]
    assert hit.passage.path == "shipping-policy.md" and hit.passage.heading == "Drones"

    # New file (in a subfolder) and a deleted file.
    (docs / "faq").mkdir()
    (docs / "faq" / "gift-cards.txt").write_text("Gift cards never expire.\n\nQuuxify them.\n")
    (docs / "refund-policy.md").unlink()
    changed = kb_copy.sync()
    assert (changed.added, changed.removed) == (1, 1)
    assert kb_copy.search("quuxify")[0].passage.citation == "[faq/gift-cards.txt L1-3]"
    assert all(h.passage.path != "refund-policy.md" for h in kb_copy.search("refund", k=8))


def test_each_directory_has_its_own_index(kb_copy: KnowledgeBase, tmp_path: Path) -> None:
    kb_copy.sync()
    other = tmp_path / "other"
    other.mkdir()
    (other / "only.md").write_text("# Only\n\nFlibbertigibbet.\n")
    base = tmp_path / "index.sqlite"
    kb2 = KnowledgeBase(other, base)
    assert kb2.index_path != kb_copy.index_path
    assert kb2.index_path == index_path_for(other / "." / "", base)  # keyed by resolved dir
    assert kb2.sync().added == 1
    assert [h.passage.path for h in kb2.search("refund flibbertigibbet")] == ["only.md"]
    # The first directory's index was not touched by the second.
    assert kb_copy.sync().added == 0 and kb_copy.search("refund")[0].passage.path != "only.md"


def test_concurrent_runs_never_see_another_directorys_passages(tmp_path: Path) -> None:
    dirs = {}
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / f"{name}.md").write_text(f"# {name}\n\nShared keyword wibble, from {name}.\n")
        dirs[name] = d
    base = tmp_path / "data" / "kb_index.sqlite"
    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    errors: list[BaseException] = []

    def worker(name: str, edit: bool) -> None:
        try:
            for i in range(15):
                kb = KnowledgeBase(dirs[name], base)  # a fresh object per run, like a tool
                if edit:  # a document changes between runs: the index is rebuilt meanwhile
                    (dirs[name] / f"{name}.md").write_text(
                        f"# {name}\n\nShared keyword wibble, from {name}, version {i}.\n"
                    )
                seen[name].update(h.passage.path for h in kb.search("wibble"))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(n, e)) for n in ("a", "b") for e in (True, False)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen == {"a": {"a.md"}, "b": {"b.md"}}


async def test_tool_output(tmp_path: Path) -> None:
    ctx = ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=SAMPLE_KB_DIR,
        kb_index=tmp_path / "data" / "kb_index.sqlite",
        customer_db=tmp_path / "cs.sqlite",
    )
    tool = search_knowledge_base_tool(ctx)
    out = await tool.ainvoke({"query": "refund window", "k": 3})
    assert out.startswith("3 passages for 'refund window'")
    assert len(CITATION.findall(out)) == 3 and len(out) < 4000
    assert "refund-policy.md#Eligibility and time limits" in out
    assert (await tool.ainvoke({"query": "?!"})).startswith("Error: the query has no searchable")
    assert "No passages found" in await tool.ainvoke({"query": "xylophonist"})
    assert (await tool.ainvoke({"query": "refund", "k": 50})).startswith("Error: invalid arguments")
    missing = ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path / "nope",
        kb_index=tmp_path / "i.sqlite",
        customer_db=tmp_path / "cs.sqlite",
    )
    assert "does not exist" in await search_knowledge_base_tool(missing).ainvoke({"query": "x"})
