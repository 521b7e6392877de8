"""The researcher as steps: search (code), answer from the passages (model), cite (code).

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

from agents.flows.common import Resources, add_usage, clip, generate, messages, task_block
from agents.flows.evidence import STOP_WORDS, quote_block, quotes
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


class ResearchState(FlowState, total=False):
    passages: list[dict[str, str]]
    """Retrieved passages: ``{"citation", "path", "text"}``."""
    query: str
    """What the quotes are chosen for: the task's instruction (else the goal)."""
    answer: str


_FILLER = re.compile(
    r"\b(using|use|from|in|according to|based on|drawing on|per) (the |our )?"
    r"(knowledge base|documentation|docs)\b",
    re.IGNORECASE,
)
_QUERY_WORD = re.compile(r"[\w./+=-]*\w", re.UNICODE)
REQUEST_WORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "please me is do the a an and or of to in on at by it as be find facts fact needed need "
        "goal sources source cite cited citing write writes written brief answer ending end up "
        "research results result task earlier document documents drawing draw"
    ).split()
) | STOP_WORDS
"""Words of a request (and of the planner's task templates) that say what to do, not what
about: they match every document alike and, first in the query, crowd out its subject."""
QUERY_TERMS = MAX_QUERY_TERMS
"""Content words kept in a query: as many as the knowledge base takes in one search."""


def query_of(text: str) -> str:
    """A search query from a task: its content words in order, without the request's
    filler ("using the knowledge base, explain how ...", "find the facts needed for this
    goal, with their sources: write a short report on ..."), which would match every
    document equally and push the subject out of the capped term list."""
    words = _QUERY_WORD.findall(_FILLER.sub(" ", text))
    kept = [w for w in words if w.lower() not in REQUEST_WORDS]
    unique = list(dict.fromkeys(w.lower() for w in kept))[:QUERY_TERMS]
    return " ".join(unique) or text.strip()


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


class ResearchSteps:
    def __init__(self, resources: Resources) -> None:
        self.res = resources

    async def search(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Retrieve passages for the task (the instruction, then the goal, as queries)."""
        ctx = self.res.tools(runtime)
        kb = KnowledgeBase(ctx.kb_dir, ctx.kb_index)
        task = state.get("task") or {}
        queries = [
            query_of(str(task.get("instruction") or "")),
            query_of(str(state.get("goal") or "")),
        ]
        queries = [q for q in queries if q.strip()]
        passages = await asyncio.to_thread(
            search_passages, kb, queries, MAX_PASSAGES, PER_DOC, RELATIVE_SCORE, MIN_PASSAGES
        )
        return {"passages": passages, "query": queries[0] if queries else ""}

    async def answer(self, state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The model answers from the numbered passages only."""
        passages = state.get("passages") or []
        task = task_block(dict(state))
        user = (
            f"{task}\n\nNotes from the knowledge base:\n"
            f"{passage_block(passages, state.get('query') or None)}\n\n"
            f"{task.splitlines()[0]}\nAnswer in 2 to 5 sentences of your own words, each fact "
            "followed by the number of its note in brackets, like [2]:"
        )
        model = await self.res.model(runtime)
        text, n_in, n_out = await generate(
            model, messages(ANSWER_SYSTEM, user), get_config(), max_tokens=ANSWER_TOKENS,
            stop=["\nNotes from", "\n\n\n"],
        )  # fmt: skip
        return {"answer": text.strip(), "usage": add_usage(dict(state), n_in, n_out), "steps": 1}

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
        quoted = quotes(passages, state.get("query") or "")
        citations = list(dict.fromkeys(cited(answer, passages) + [c for _, c in quoted]))
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
    builder.add_node("search", steps.search)
    builder.add_node("answer", steps.answer)
    builder.add_node("cite", steps.cite)
    builder.add_edge(START, "search")
    builder.add_conditional_edges("search", steps.after_search)
    builder.add_edge("answer", "cite")
    builder.add_edge("cite", "__end__")
    return builder.compile(name=name)
