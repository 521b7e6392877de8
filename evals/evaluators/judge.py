"""LLM-as-judge evaluators (openevals): correctness against the reference, groundedness
against the cited sources.

The judge is any LangChain chat model. openevals asks it for structured output through
``with_structured_output(schema, **structured_output_kwargs)``; we pass
``{"method": "function_calling"}`` so the request is one *forced, named* tool call — the
only structured-output form the embedded llama.cpp server supports (its default, JSON
schema ``response_format``, is not), and one every OpenAI-compatible endpoint and the
test model understand. Citations like ``[refund-policy.md#Time limits L12-20]`` are
resolved to the cited lines of the knowledge base so the judge sees what was cited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from openevals.llm import create_async_llm_as_judge

from core.models.structured import structured_method
from core.text import truncate
from evals.evaluators.base import Score, not_applicable, score, section

JudgeSource = BaseChatModel | Callable[[], BaseChatModel]
"""A judge model, or a factory called for each verdict (so a restarted local server, which
may come back on another port, is picked up: ``chat_model`` checks it on every call)."""

def structured_output_kwargs(judge: BaseChatModel) -> dict[str, Any]:
    """How the judge is asked for its verdict: the product's method for that model — a forced
    named tool call, or JSON-schema constrained decoding on the embedded llama.cpp server
    (which ignores a named ``tool_choice``, so the verdict came back empty)."""
    return {"method": structured_method(judge)}

MAX_ANSWER_CHARS = 3000
MAX_SOURCE_CHARS = 6000

CORRECTNESS_PROMPT = """You grade an answer against a reference.

<question>
{inputs}
</question>

<answer>
{outputs}
</answer>

<reference>
{reference_outputs}
</reference>

The answer is correct if it gives the key facts of the reference and does not contradict
it. Extra detail is fine. An answer that misses the main point, gives a different fact or
number, or contradicts the reference is not correct."""

GROUNDEDNESS_PROMPT = """You check whether an answer is supported by its sources.

<sources>
{context}
</sources>

<answer>
{outputs}
</answer>

The answer is grounded if every factual claim in it is stated in the sources or follows
directly from them. A claim the sources do not support, or one that contradicts them,
makes the answer not grounded."""

_CITED_PATH = re.compile(r"[^\s\[\]#()<>\"']+\.(?:md|markdown|txt)\b")
_LINE_RANGE = re.compile(r"\bL(?P<a>\d+)(?:-(?P<b>\d+))?\s*$")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return truncate(text, limit, mark="\n… [cut]")


@dataclass(frozen=True)
class CitedSource:
    """A citation resolved to knowledge-base text."""

    citation: str
    path: str
    text: str


def resolve_citation(citation: str, kb_dir: Path) -> CitedSource | None:
    """The text a citation points at: its line range, else its section, else the document.

    Returns None when the citation names no document inside ``kb_dir``.
    """
    match = _CITED_PATH.search(citation)
    if not match:
        return None
    rest = citation[match.end() :].split("]")[0]  # "#Heading L10-24" (each part optional)
    span = _LINE_RANGE.search(rest)
    heading = (rest[: span.start()] if span else rest).strip()
    heading = heading[1:].strip() if heading.startswith("#") else ""
    root = kb_dir.resolve()
    target = (root / match[0].lstrip("/")).resolve()
    if root not in target.parents or not target.is_file():
        hits = sorted(root.rglob(Path(match[0]).name))  # cited by bare file name
        if not hits:
            return None
        target = hits[0]
    lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    rel = target.relative_to(root).as_posix()
    if span:
        a = int(span["a"])
        b = int(span["b"] or a)
        if 1 <= a <= b:
            return CitedSource(citation, rel, "\n".join(lines[a - 1 : b]))
    if heading:
        for i, line in enumerate(lines):
            if line.lstrip("#").strip() == heading and line.startswith("#"):
                end = next(
                    (j for j in range(i + 1, len(lines)) if lines[j].startswith("#")), len(lines)
                )
                return CitedSource(citation, rel, "\n".join(lines[i:end]))
    return CitedSource(citation, rel, "\n".join(lines))


def source_context(
    citations: Sequence[str],
    kb_dir: Path,
    fallback_sources: Sequence[str] = (),
    limit: int = MAX_SOURCE_CHARS,
) -> tuple[str, list[str]]:
    """Rendered source text for the judge and the citations it came from.

    Uses the cited passages; when none resolve, the reference's source documents.
    """
    resolved = [r for c in citations if (r := resolve_citation(c, kb_dir))]
    used = [r.citation for r in resolved]
    if not resolved:
        resolved = [r for s in fallback_sources if (r := resolve_citation(s, kb_dir))]
        used = [f"(reference) {r.path}" for r in resolved]
    seen: set[str] = set()
    blocks = []
    for r in resolved:
        if r.text in seen:
            continue
        seen.add(r.text)
        blocks.append(f"[{r.path}]\n{r.text}")
    return clip("\n\n".join(blocks), limit), used


def default_kb_dir() -> Path:
    """The shipped sample knowledge base."""
    from tools.context import SAMPLE_KB_DIR

    return SAMPLE_KB_DIR


def _reference_text(ref: Mapping[str, Any]) -> str | None:
    answer, rubric = ref.get("answer"), ref.get("rubric")
    parts = []
    if answer:
        parts.append(str(answer))
    if rubric:
        parts.append(f"A correct answer: {rubric}")
    return "\n".join(parts) or None


def _verdict(result: Any, key: str) -> Score:
    if isinstance(result, list):  # openevals returns a list for multi-key schemas
        result = result[0] if result else {}
    if not isinstance(result, Mapping):
        return score(key, None, f"judge gave no score: {result!r}")
    value = result.get("score")
    if isinstance(value, (bool, int, float)):
        return score(key, float(value), str(result.get("comment") or "") or None)
    return score(key, None, f"judge gave no score: {result!r}")


def _grader(judge: JudgeSource, prompt: str, key: str, use_reasoning: bool) -> Callable[[], Any]:
    """A function returning the openevals grader, on the judge as it is now."""
    fixed = judge if isinstance(judge, BaseChatModel) else None

    def make() -> Any:
        model = fixed or judge()  # type: ignore[operator]
        kwargs = structured_output_kwargs(model)
        return create_async_llm_as_judge(
            prompt=prompt,
            judge=model,
            feedback_key=key,
            # The embedded model writes its reasoning field until the token cap (measured:
            # 512 tokens, no verdict); without it the verdict comes back in a few tokens.
            use_reasoning=use_reasoning and kwargs["method"] != "json_schema",
            structured_output_kwargs=kwargs,
        )

    if fixed is not None:
        built = make()
        return lambda: built
    return make


def make_correctness(judge: JudgeSource, *, use_reasoning: bool = True) -> Any:
    """Evaluator ``correctness`` (0/1): the answer against the example's ``answer``/``rubric``."""
    grader = _grader(judge, CORRECTNESS_PROMPT, "correctness", use_reasoning)

    async def correctness(
        inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
    ) -> Score:
        reference = _reference_text(reference_outputs or {})
        if not reference:
            return not_applicable("correctness", "the example has no reference answer or rubric")
        answer = str((outputs or {}).get("answer") or "").strip()
        if not answer:
            return score("correctness", 0.0, "no answer")
        try:
            result = await grader()(
                inputs=str((inputs or {}).get("goal", "")),
                outputs=clip(answer, MAX_ANSWER_CHARS),
                reference_outputs=reference,
            )
        except Exception as exc:  # a judge that cannot answer is not the system's failure
            return score("correctness", None, f"judge failed: {type(exc).__name__}: {exc}"[:300])
        return _verdict(result, "correctness")

    return correctness


def make_groundedness(
    judge: JudgeSource, *, kb_dir: Path | None = None, use_reasoning: bool = True
) -> Any:
    """Evaluator ``groundedness`` (0/1): the answer against the passages it cites (or,
    when it cites none, the example's reference ``sources``)."""
    grader = _grader(judge, GROUNDEDNESS_PROMPT, "groundedness", use_reasoning)

    async def groundedness(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
        answer = str((outputs or {}).get("answer") or "").strip()
        if not answer:
            return score("groundedness", 0.0, "no answer")
        citations = [str(c) for c in (outputs or {}).get("citations") or []]
        sources = [str(s) for s in section(reference_outputs, "sources") or []]
        context, used = source_context(citations, kb_dir or default_kb_dir(), sources)
        if not context:
            return not_applicable("groundedness", "no resolvable citation and no reference sources")
        try:
            result = await grader()(outputs=clip(answer, MAX_ANSWER_CHARS), context=context)
        except Exception as exc:
            return score("groundedness", None, f"judge failed: {type(exc).__name__}: {exc}"[:300])
        verdict = _verdict(result, "groundedness")
        verdict["comment"] = f"sources: {', '.join(used)}. {verdict.get('comment') or ''}".strip()
        return verdict

    return groundedness


def source_recall(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> Score:
    """Evaluator ``source_recall``: share of the reference source documents the run cited
    (in its citations or in the answer text)."""
    sources = [str(s) for s in section(reference_outputs, "sources") or []]
    if not sources:
        return not_applicable("source_recall", "the example names no sources")
    cited = " ".join(str(c) for c in (outputs or {}).get("citations") or [])
    cited += " " + str((outputs or {}).get("answer") or "")
    found = [s for s in sources if Path(s).name in cited]
    missing = [s for s in sources if s not in found]
    return score(
        "source_recall",
        round(len(found) / len(sources), 4),
        f"missing {', '.join(missing)}" if missing else "all sources cited",
    )
