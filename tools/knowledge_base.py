"""Knowledge-base search: Markdown/text documents chunked into passages, SQLite FTS5 + BM25.

Each knowledge-base directory has its own index, a SQLite file named after a hash of the
directory's resolved path (:func:`index_path_for`), so runs over different directories
never share or rebuild each other's index. It is brought up to date before each search:
only new or changed files (by mtime and size, confirmed by content hash) are re-chunked,
and deleted files are dropped, in one write transaction (concurrent syncs of the same
directory serialize; readers see the last committed index). Passages keep their location so answers can cite them as
``[doc.md#Heading L10-24]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.base import ToolInputError, ToolTraits, make_tool
from tools.context import ToolContext

INDEX_VERSION = "1"
EXTENSIONS = (".md", ".markdown", ".txt")
MAX_CHUNK_CHARS = 1000
MIN_CHUNK_CHARS = 400
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_QUERY_TERMS = 24
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "a an and are as at be by can do does for from how i if in into is it its me my of on "
        "or our should that the their them then there these this to was we what when where "
        "which who why will with you your"
    ).split()
)


@dataclass(frozen=True)
class Passage:
    """One indexed chunk of a document."""

    path: str
    """Document path relative to the knowledge-base directory (POSIX separators)."""
    heading: str
    """Nearest heading above the passage ('' before the first heading / in .txt files)."""
    line_start: int
    line_end: int
    text: str

    @property
    def citation(self) -> str:
        """Citation for answers, e.g. ``[refund-policy.md#Time limits L12-20]``."""
        anchor = f"#{self.heading}" if self.heading else ""
        return f"[{self.path}{anchor} L{self.line_start}-{self.line_end}]"


@dataclass(frozen=True)
class SearchHit:
    passage: Passage
    score: float
    """BM25 score (higher is better)."""


@dataclass(frozen=True)
class SyncStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0


# -- chunking ----------------------------------------------------------------------------


def _blocks(lines: list[str], markdown: bool) -> Iterator[tuple[str, int, int, str]]:
    """Yield (heading, first line, last line, text) blocks: paragraphs within sections.

    Fenced code stays in one block; headings start a new section (Markdown only).
    """
    heading = ""
    buf: list[str] = []
    start = 0
    in_fence = False

    def flush(end: int) -> Iterator[tuple[str, int, int, str]]:
        text = "\n".join(buf).strip("\n")
        if text.strip():
            yield heading, start, end, text

    for no, line in enumerate(lines, start=1):
        if markdown and _FENCE.match(line):
            in_fence = not in_fence
        elif markdown and not in_fence and (m := _HEADING.match(line)):
            yield from flush(no - 1)
            heading = m.group(2).strip()
            buf, start = [line], no
            continue
        if not in_fence and not line.strip():
            yield from flush(no - 1)
            buf, start = [], no + 1
            continue
        if not buf:
            start = no
        buf.append(line)
    yield from flush(len(lines))


def _split_long(heading: str, start: int, text: str) -> Iterator[tuple[str, int, int, str]]:
    """Split an oversized block at line boundaries (hard-cut very long lines)."""
    piece: list[str] = []
    first = start
    for no, line in enumerate(text.split("\n"), start=start):
        while len(line) > MAX_CHUNK_CHARS:
            if piece:
                yield heading, first, no - 1, "\n".join(piece)
                piece = []
            yield heading, no, no, line[:MAX_CHUNK_CHARS]
            line = line[MAX_CHUNK_CHARS:]
            first = no
        if piece and sum(len(p) + 1 for p in piece) + len(line) > MAX_CHUNK_CHARS:
            yield heading, first, no - 1, "\n".join(piece)
            piece = []
        if not piece:
            first = no
        piece.append(line)
    if piece:
        yield heading, first, start + text.count("\n"), "\n".join(piece)


def chunk_text(text: str, path: str, *, markdown: bool = True) -> list[Passage]:
    """Chunk a document into passages of roughly 400–1000 characters within sections."""
    lines = text.splitlines()
    out: list[Passage] = []
    cur: list[tuple[str, int, int, str]] = []

    def emit() -> None:
        if cur:
            body = "\n\n".join(b[3] for b in cur)
            out.append(Passage(path, cur[0][0], cur[0][1], cur[-1][2], body))
            cur.clear()

    for block in _blocks(lines, markdown):
        heading, start, _end, body = block
        pieces = (
            [block] if len(body) <= MAX_CHUNK_CHARS else list(_split_long(heading, start, body))
        )
        for piece in pieces:
            if cur and piece[0] != cur[0][0]:  # a new section starts a new passage
                if all(_HEADING.match(b[3]) and "\n" not in b[3] for b in cur):
                    cur.clear()  # headings without text of their own: nothing to cite
                emit()
            elif cur and sum(len(b[3]) + 2 for b in cur) + len(piece[3]) > MAX_CHUNK_CHARS:
                emit()
            cur.append(piece)
    emit()
    return out


# -- index -------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    path UNINDEXED, heading UNINDEXED, line_start UNINDEXED, line_end UNINDEXED, title, body,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


def build_match_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query: quoted terms OR-ed (BM25 ranks by overlap).

    Quoting makes FTS5 operators and syntax in user text (AND, NEAR, ``*``, ``"``,
    ``:``, parentheses) plain words, so no query can raise a syntax error.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    terms = [w for w in words if w not in _STOPWORDS] or words
    unique = list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]
    if not unique:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)


def index_path_for(kb_dir: Path, base: Path) -> Path:
    """The index file of ``kb_dir``: ``base`` with a hash of the resolved directory added,
    e.g. ``data/kb_index.sqlite`` -> ``data/kb_index-3f2a9c0d1e4b.sqlite``."""
    digest = hashlib.sha256(os.fsencode(kb_dir.resolve())).hexdigest()[:16]
    return base.with_name(f"{base.stem}-{digest}{base.suffix or '.sqlite'}")


class KnowledgeBase:
    """A directory of documents and its FTS5 index. Methods block: call them in a thread.

    ``index_base`` names where indexes live; the file used is :func:`index_path_for`.
    """

    def __init__(self, kb_dir: Path, index_base: Path) -> None:
        self.kb_dir = kb_dir
        self.index_path = index_path_for(kb_dir, index_base)

    def _connect(self) -> sqlite3.Connection:
        if not self.index_path.exists():
            self._build_new_index()
        conn = sqlite3.connect(self.index_path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        return conn

    def _build_new_index(self) -> SyncStats | None:
        """The first build, safe when several processes do it at once: each builds into a
        private temporary file, which is then linked into place (``os.link``: atomic, and
        unlike a rename it never replaces an index another process already has open). The
        first link wins; the others drop their copy, built from the same documents. Later
        updates are incremental, in the index itself, one writer at a time (``_sync``).
        Returns what the build indexed, or None when another process's index won."""
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_name(
            f".{self.index_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: no switch on the shared file
            conn.executescript(_SCHEMA)
            stats = self._sync(conn)
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()  # the last connection checkpoints the WAL into the file
        try:
            os.link(tmp, self.index_path)
            return stats
        except FileExistsError:
            return None
        finally:
            tmp.unlink(missing_ok=True)

    def _scan(self) -> dict[str, os.stat_result]:
        root = self.kb_dir.resolve()
        if not root.is_dir():
            raise ToolInputError(f"knowledge base directory {str(self.kb_dir)!r} does not exist")
        found: dict[str, os.stat_result] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if name.startswith(".") or not name.lower().endswith(EXTENSIONS):
                    continue
                full = Path(dirpath, name)
                st = full.stat()
                if st.st_size <= MAX_FILE_BYTES:
                    found[full.relative_to(root).as_posix()] = st
        return found

    def _changes(
        self, conn: sqlite3.Connection, files: dict[str, os.stat_result]
    ) -> tuple[list[str], list[str]]:
        known = {p: (m, s) for p, m, s in conn.execute("SELECT path, mtime_ns, size FROM docs")}
        changed = [p for p, st in files.items() if known.get(p) != (st.st_mtime_ns, st.st_size)]
        removed = [p for p in known if p not in files]
        return changed, removed

    def sync(self) -> SyncStats:
        """Bring the index up to date with the directory (incremental)."""
        if not self.index_path.exists() and (built := self._build_new_index()) is not None:
            return built
        conn = self._connect()
        try:
            return self._sync(conn)
        finally:
            conn.close()

    def _sync(self, conn: sqlite3.Connection) -> SyncStats:
        files = self._scan()
        root = str(self.kb_dir.resolve())
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        stale = meta.get("version") != INDEX_VERSION or meta.get("kb_dir") != root
        changed, removed = self._changes(conn, files)
        if not stale and not changed and not removed:
            return SyncStats(unchanged=len(files))
        conn.execute("BEGIN IMMEDIATE")  # one writer; others wait, then see its work
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))  # again, under the lock
            if meta.get("version") != INDEX_VERSION or meta.get("kb_dir") != root:
                conn.execute("DELETE FROM docs")
                conn.execute("DELETE FROM chunks")
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("version", INDEX_VERSION), ("kb_dir", root)],
                )
            stats = self._apply(conn, files, root)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stats

    def _apply(
        self, conn: sqlite3.Connection, files: dict[str, os.stat_result], root: str
    ) -> SyncStats:
        changed, removed = self._changes(conn, files)  # again, inside the write lock
        hashes = dict(conn.execute("SELECT path, sha256 FROM docs"))
        added = updated = 0
        for rel in changed:
            st = files[rel]
            data = Path(root, rel).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if hashes.get(rel) == digest:  # touched, not edited: keep the chunks
                conn.execute(
                    "UPDATE docs SET mtime_ns=?, size=? WHERE path=?",
                    (st.st_mtime_ns, st.st_size, rel),
                )
                continue
            conn.execute("DELETE FROM chunks WHERE path=?", (rel,))
            text = data.decode("utf-8", "replace")
            markdown = not rel.lower().endswith(".txt")
            title = _title(text, rel)
            conn.executemany(
                "INSERT INTO chunks(path, heading, line_start, line_end, title, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (p.path, p.heading, p.line_start, p.line_end, f"{title} {p.heading}", p.text)
                    for p in chunk_text(text, rel, markdown=markdown)
                ],
            )
            conn.execute(
                "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)",
                (rel, st.st_mtime_ns, st.st_size, digest),
            )
            if rel in hashes:
                updated += 1
            else:
                added += 1
        for rel in removed:
            conn.execute("DELETE FROM chunks WHERE path=?", (rel,))
            conn.execute("DELETE FROM docs WHERE path=?", (rel,))
        return SyncStats(added, updated, len(removed), len(files) - added - updated)

    def search(self, query: str, k: int = 4, per_doc: int = 2) -> list[SearchHit]:
        """Top ``k`` passages for ``query`` (at most ``per_doc`` from one document)."""
        match = build_match_query(query)
        if match is None:
            raise ToolInputError("the query has no searchable words")
        conn = self._connect()
        try:
            self._sync(conn)
            rows = conn.execute(
                "SELECT path, heading, line_start, line_end, body, "
                "bm25(chunks, 0, 0, 0, 0, 2.0, 1.0) AS score "
                "FROM chunks WHERE chunks MATCH ? ORDER BY score LIMIT ?",
                (match, k * 4),
            ).fetchall()
        finally:
            conn.close()
        hits: list[SearchHit] = []
        per: dict[str, int] = {}
        for path, heading, start, end, body, score in rows:
            if per.get(path, 0) >= per_doc:
                continue
            per[path] = per.get(path, 0) + 1
            hits.append(SearchHit(Passage(path, heading, int(start), int(end), body), -score))
            if len(hits) == k:
                break
        return hits


def _title(text: str, rel: str) -> str:
    for line in text.splitlines()[:20]:
        if m := _HEADING.match(line):
            return m.group(2)
    return Path(rel).stem.replace("-", " ").replace("_", " ")


def format_hits(query: str, hits: list[SearchHit], max_passage_chars: int = 900) -> str:
    """Compact, citable text for a model."""
    if not hits:
        return f"No passages found for {query!r}. Try other keywords."
    parts = [f"{len(hits)} passages for {query!r} (cite them as shown):"]
    for i, hit in enumerate(hits, start=1):
        text = hit.passage.text.strip()
        if len(text) > max_passage_chars:
            text = text[:max_passage_chars].rsplit(" ", 1)[0] + " …"
        parts.append(f"{i}. {hit.passage.citation}\n{text}")
    return "\n\n".join(parts)


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for, in plain words (keywords work best).")
    k: int = Field(default=4, ge=1, le=8, description="How many passages to return.")


def search_knowledge_base_tool(ctx: ToolContext) -> BaseTool:
    """The ``search_knowledge_base`` tool over ``ctx.kb_dir``."""
    kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)

    async def search_knowledge_base(query: str, k: int = 4) -> str:
        hits = await asyncio.to_thread(kb.search, query, k)
        return format_hits(query, hits)

    return make_tool(
        name="search_knowledge_base",
        description=(
            "Search the knowledge base (company policies such as refunds, shipping, warranty, "
            "accounts and escalation; technical notes on search, RAG, agents, LLM evaluation, "
            "databases). Returns the best passages, each with a citation like "
            "[doc.md#Heading L10-24] to quote in your answer."
        ),
        args_schema=SearchArgs,
        coroutine=search_knowledge_base,
        traits=ToolTraits(reads_knowledge_base=True),
    )
