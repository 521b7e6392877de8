"""The researcher as steps: split (model), search (code), answer (model), cite (code).

A question may ask about several things ("how long is the refund window, and what does
the warranty cover?"): which parts it has is the model's judgment, one schema-constrained
call returning one to three sub-questions. Code keeps only parts made of the question's own
words, searches the knowledge base once per part, and answers from the union of each
part's best passages (not the top document's alone); every part is cited — a part none of
whose passages the answer cites gets its best passage's key lines quoted and cited.

The answer carries the evidence: under the model's few sentences, code quotes the key lines
of the retrieved passages (``agents.flows.evidence``), each with its citation, so a fact the
model drops or garbles is still in the answer, verbatim and attributed.

Citations are the passages the answer actually drew on, checked by code: the model marks
facts with passage numbers ([1], [2]); only numbers of passages it was shown count, and an
answer without valid marks cites the retrieved passages that share the most words with it.
A citation is never taken from the model's own text.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.flows.common import (
    Resources,
    add_usage,
    clip,
    decide,
    generate,
    messages,
    task_block,
    usage_of,
)
from agents.flows.evidence import STOP_WORDS, quote_block, quotes, terms
from agents.flows.state import FlowInput, FlowOutput, FlowState
from agents.run_context import RunContext
from tools.base import ToolInputError
from tools.knowledge_base import MAX_QUERY_TERMS, KnowledgeBase

PASSAGES = 4
MIN_PASSAGES = 3
PASSAGE_CHARS = 1100
ANSWER_TOKENS = 180
ANSWER_SYSTEM = (
    "You answer questions from numbered notes of a knowledge base. Use only facts from the "
    "notes; copy their exact terms, names and numbers. Write 2 to 5 sentences. After each "
    "fact put the number of its passage in brackets, like [1]. If the passages do not answer "
    "the question, say that the knowledge base does not answer it."
)
_MARK = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[a-z0-9]{4,}")


SPLIT_SYSTEM = (
    "You split a question into the separate things it asks about. Give one part when it asks "
    "about one thing, and up to three parts when it asks about several. Each part is a short "
    "question in the question's own words."
)
MAX_PARTS = 3


class Parts(BaseModel):
    """The separate things a question asks about."""

    parts: list[str] = Field(
        min_length=1, max_length=MAX_PARTS,
        description="One short question per thing asked about, in the question's own words.",
    )


class ResearchState(FlowState, total=False):
    parts: list[str]
    """What the question asks about: the model's sub-questions, checked (one: the question)."""
    passages: list[dict[str, str]]
    """Retrieved passages: ``{"citation", "path", "text"}``, the parts' best interleaved."""
    by_part: list[list[str]]
    """The citations of the passages found for each part, best first."""
    query: str
    """What the quotes are chosen for: the parts (else the task's instruction or the goal)."""
    answer: str


_QUERY_WORD = re.compile(r"[\w./+=-]*\w", re.UNICODE)
QUERY_TERMS = MAX_QUERY_TERMS
"""Content words kept in a query: as many as the knowledge base takes in one search."""


def query_of(text: str) -> str:
    """A search query from a text: its content words in order (stop words and one- or
    two-letter words left out, as ``evidence.terms`` does), at most
    as many as the knowledge base takes, so the subject is not pushed out of the capped term
    list by words that match every document alike."""
    words = _QUERY_WORD.findall(text)
    kept = [w for w in words if w.lower() not in STOP_WORDS and (len(w) > 2 or w.isdigit())]
    unique = list(dict.fromkeys(w.lower() for w in kept))[:QUERY_TERMS]
    return " ".join(unique) or text.strip()


def checked_parts(parts: list[str], question: str) -> list[str]:
    """The model's parts that stay within ``question``: at least half of each part's content
    terms are the question's (a part about something else is dropped), and each asks about
    some of the question's terms no earlier part did (a paraphrase is dropped); the question
    itself when none is left."""
    asked = terms(question)
    kept: list[str] = []
    seen: set[str] = set()
    for part in parts[:MAX_PARTS]:
        own = terms(part)
        if not own or len(own & asked) * 2 < len(own) or own & asked <= seen:
            continue  # off the question, or only what earlier parts asked (a paraphrase)
        kept.append(" ".join(part.split()))
        seen |= own & asked
    return kept or [" ".join(question.split())]


MAX_PASSAGES = 6
PER_DOC = 6
RELATIVE_SCORE = 0.45
"""Beyond the first ``MIN_PASSAGES``, a passage is kept while its BM25 score is at least
this share of the best one's: a request about several things (a report, a comparison)
gets the sections on each of them, not only the best two of one document, and a narrow
question is not padded with passages that merely share a word with it."""


def scored_passages(
    kb: KnowledgeBase, query: str, k: int = PASSAGES, per_doc: int = 2
) -> list[tuple[float, dict[str, str]]]:
    """``(BM25 score, passage)`` for the top passages of ``query`` (blocking: SQLite); none
    for a query without searchable words."""
    try:
        hits = kb.search(query, k=k, per_doc=per_doc)
    except ToolInputError:
        return []
    return [
        (h.score, {"citation": h.passage.citation, "path": h.passage.path, "text": h.passage.text})
        for h in hits
    ]


def search_passages(
    kb: KnowledgeBase,
    queries: list[str],
    k: int = PASSAGES,
    per_doc: int = 2,
    relative: float | None = None,
    at_least: int = PASSAGES,
) -> list[dict[str, str]]:
    """The top passages for the first query that finds any (blocking: SQLite); with
    ``relative``, beyond the first ``at_least`` only those scoring that share of the best."""
    for query in queries:
        hits = scored_passages(kb, query, k, per_doc)
        if hits:
            floor = hits[0][0] * relative if relative is not None else 0.0
            return [p for i, (score, p) in enumerate(hits) if i < at_least or score >= floor]
    return []


def union_of(found: list[list[dict[str, str]]], limit: int = MAX_PASSAGES) -> list[dict[str, str]]:
    """The passages of every part, interleaved by rank (each part's best first, then each
    one's second, ...), without repeats, at most ``limit``: a part's best passages are kept
    even when another part's document scores higher."""
    union: dict[str, dict[str, str]] = {}
    for rank in range(max((len(f) for f in found), default=0)):
        for passages in found:
            if rank < len(passages) and len(union) < limit:
                union.setdefault(passages[rank]["citation"], passages[rank])
    return list(union.values())


UNCOVERED_TERMS = 2
"""Content terms of the question in none of the parts from which the whole question is
searched too: the parts may have left something out."""


def search_parts(
    kb: KnowledgeBase, parts: list[str], question: str, fallback: list[str]
) -> tuple[list[dict[str, str]], list[list[str]]]:
    """Each part searched on its own, the union of their passages, and each part's
    citations (blocking: SQLite). The whole question is searched as well when the parts
    leave ``UNCOVERED_TERMS`` of its terms out (its passages come last); when nothing finds
    anything, the ``fallback`` queries."""
    at_least = max(1, MIN_PASSAGES // len(parts)) if len(parts) > 1 else MIN_PASSAGES
    found = [
        search_passages(kb, [query_of(p)], MAX_PASSAGES, PER_DOC, RELATIVE_SCORE, at_least)
        for p in parts
    ]
    covered = set().union(*(terms(p) for p in parts))
    extra: list[dict[str, str]] = []
    if len(terms(question) - covered) >= UNCOVERED_TERMS:
        extra = search_passages(kb, [query_of(question)], MAX_PASSAGES, PER_DOC, RELATIVE_SCORE, 1)
    if not any(found) and not extra:
        extra = search_passages(kb, [q for q in fallback if q.strip()], MAX_PASSAGES, PER_DOC,
                                RELATIVE_SCORE, MIN_PASSAGES)  # fmt: skip
    passages = union_of([*found, extra])
    kept = {p["citation"] for p in passages}
    return passages, [[p["citation"] for p in f if p["citation"] in kept] for f in found]


def passage_block(passages: list[dict[str, str]], query: str | None = None) -> str:
    """Passages as the model sees them: numbered, plain text, headings as labels; with a
    ``query``, only each passage's key lines (a short, focused prompt for a small model;
    a passage with no key line is shown whole)."""
    parts = []
    for i, p in enumerate(passages, 1):
        lines = [line for line, _ in quotes([p], query)] if query else []
        if lines:
            body = " ".join(lines)
        else:
            body = " ".join(
                line.lstrip("#").strip() for line in p["text"].splitlines() if line.strip()
            )
        parts.append(f"Note {i}: {clip(body, PASSAGE_CHARS)}")
    return "\n\n".join(parts)


def cited(answer: str, passages: list[dict[str, str]]) -> list[str]:
    """Citations for ``answer``: the passages it marks, else those it overlaps most."""
    marks = [int(n) for n in _MARK.findall(answer)]
    chosen = [passages[n - 1]["citation"] for n in marks if 1 <= n <= len(passages)]
    if not chosen and passages:
        words = set(_WORD.findall(answer.lower()))
        overlap = [len(words & set(_WORD.findall(p["text"].lower()))) for p in passages]
        best = max(overlap)
        if best >= 3:
            chosen = [
                p["citation"] for p, o in zip(passages, overlap, strict=True) if o >= best / 2
            ]
    return list(dict.fromkeys(chosen))


_RUN = re.compile(r"(\S+)(?:\s+\1){2,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def tidy(answer: str, max_sentences: int = 6) -> str:
    """The answer without the degenerate tail small models produce: cut at the first run of
    a repeated word, keep whole sentences (at most ``max_sentences``)."""
    text = answer.strip()
    run = _RUN.search(text)
    if run:
        text = text[: run.start()]
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    kept = sentences[:max_sentences]
    while len(kept) > 1 and not kept[-1].rstrip("]) ").endswith((".", "!", "?")):
        kept.pop()  # an unfinished last sentence ("The score is calculated using:")
    return " ".join(kept)


def render(
    answer: str,
    passages: list[dict[str, str]],
    citations: list[str],
    quoted: list[tuple[str, str]] | None = None,
) -> str:
    """The answer with its marks resolved to citations, the quoted key lines of the
    passages, then the sources list."""

    def resolve(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return passages[n - 1]["citation"] if 1 <= n <= len(passages) else ""

    text = _MARK.sub(lambda m: resolve(m), answer).strip()
    if quoted:
        text += "\n\n" + quote_block(quoted, "From the sources:")
    if citations:
        text += "\n\nSources:\n" + "\n".join(f"- {c}" for c in citations)
    return text


def part_quotes(
    passages: list[dict[str, str]], parts: list[str], by_part: list[list[str]], query: str
) -> list[tuple[str, str]]:
    """The quoted key lines: for each part, of its own passages, chosen for that part (a
    share of the quotes each), so every part is quoted and cited; one part: those chosen
    for the ``query``."""
    if len(parts) <= 1 or len(by_part) != len(parts):
        return quotes(passages, query)
    share = max(2, 12 // len(parts))
    found: list[tuple[str, str]] = []
    for part, cites in zip(parts, by_part, strict=True):
        own = [p for c in cites for p in passages if p["citation"] == c]
        found += [q for q in quotes(own, part, limit=share) if q not in found]
    return found


def question_of(state: ResearchState) -> str:
    """The question the task asks: its instruction, else the goal."""
    task = state.get("task") or {}
    return str(task.get("instruction") or state.get("goal") or "").strip()


class ResearchSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def split(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model names the separate things the question asks about (1 to 3 parts)."""
        question = question_of(state)
        model = await self.res.model(runtime)
        value, usage, _ = await decide(
            model, Parts, messages(SPLIT_SYSTEM, f"Question: {question}\n\nThe parts it asks about:"),
            get_config(),
        )  # fmt: skip
        parts = checked_parts(value.parts if value is not None else [], question)
        return {"parts": parts, "usage": add_usage(dict(state), *usage_of(usage)), "steps": 1}

    async def search(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Retrieve passages for each part (the instruction, then the goal, when none finds any)."""
        ctx = self.res.tools(runtime)
        kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)
        parts = state.get("parts") or [question_of(state)]
        fallback = [query_of(question_of(state)), query_of(str(state.get("goal") or ""))]
        passages, by_part = await asyncio.to_thread(search_parts, kb, parts, question_of(state), fallback)
        query = " ".join(parts) if len(parts) > 1 else question_of(state)
        return {"passages": passages, "by_part": by_part, "query": query}

    async def answer(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model answers from the numbered passages only (each part, if several)."""
        passages = state.get("passages") or []
        parts = state.get("parts") or []
        task = task_block(dict(state))
        asks = ""
        if len(parts) > 1:
            asks = "The question asks about:\n" + "\n".join(f"- {p}" for p in parts) + "\n\n"
        user = (
            f"{task}\n\nNotes from the knowledge base:\n"
            f"{passage_block(passages, state.get('query') or None)}\n\n{asks}"
            f"{task.splitlines()[0]}\nAnswer in 2 to 5 sentences of your own words"
            + (", covering every part" if asks else "")
            + ", each fact followed by the number of its note in brackets, like [2]:"
        )
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(ANSWER_SYSTEM, user), get_config(), max_tokens=ANSWER_TOKENS,
            stop=["\nNotes from", "\n\n\n"],
        )  # fmt: skip
        return {"answer": text.strip(), "usage": add_usage(dict(state), n_in, n_out),
                "steps": state.get("steps", 0) + 1}  # fmt: skip

    async def cite(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        passages = state.get("passages") or []
        answer = tidy(state.get("answer") or "")
        if not passages:
            return {
                "output": "The knowledge base has no passage about this.", "citations": [],
                "error": None,
            }  # fmt: skip
        if not answer:
            return {"output": "", "error": "the model gave no answer"}
        parts = state.get("parts") or []
        quoted = part_quotes(passages, parts, state.get("by_part") or [], state.get("query") or "")
        citations = list(dict.fromkeys(cited(answer, passages) + [c for _, c in quoted]))
        # Every part cited: a part whose passages none of the citations is gets its best one.
        for cites in state.get("by_part") or []:
            if cites and not set(cites) & set(citations):
                citations.append(cites[0])
        return {
            "output": render(answer, passages, citations, quoted),
            "citations": citations,
            "error": None,
        }

    def after_search(self, state: ResearchState) -> Literal["answer", "cite"]:
        return "answer" if state.get("passages") else "cite"


def build_researcher(name: str, resources: Resources) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled researcher flow."""
    steps = ResearchSteps(resources)
    builder = StateGraph(
        ResearchState, context_schema=RunContext, input_schema=FlowInput, output_schema=FlowOutput
    )
    builder.add_node("split", steps.split)
    builder.add_node("search", steps.search)
    builder.add_node("answer", steps.answer)
    builder.add_node("cite", steps.cite)
    builder.add_edge(START, "split")
    builder.add_edge("split", "search")
    builder.add_conditional_edges("search", steps.after_search)
    builder.add_edge("answer", "cite")
    builder.add_edge("cite", "__end__")
    return builder.compile(name=name)
