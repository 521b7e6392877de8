"""What a worker sees: its dependencies' results, selected and fitted to a token budget.

A dependency that failed for good but left work (graph/dag.py's policy) is shown under a
``## Partial result of task …`` header, with why it failed and the files it wrote, so the
worker uses it as incomplete work and says so (agents/flows/common.py reads the header).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.text import text_tokens as _tokens
from core.text import truncate_to_tokens
from graph.dag import is_partial
from graph.state import Task, TaskRecord

ERROR_CHARS = 300
"""How much of a failed dependency's error its dependents see."""


def _body(record: TaskRecord) -> tuple[str, str]:
    """The dependency's text, and its ``Sources:`` line (kept whole: a cut citation would
    reach the dependent's sources as a source that does not exist)."""
    body = str(record.get("output") or "")
    if is_partial(record):
        error = " ".join(str(record.get("error") or "unknown error").split())[:ERROR_CHARS]
        lead = f"This task failed ({error}); what it produced before failing:"
        files = record.get("artifacts") or []
        if files and not all(f in body for f in files):
            lead += "\nFiles written: " + ", ".join(files)
        body = f"{lead}\n{body}".rstrip()
    cites = record.get("citations") or []
    return body, ("\nSources: " + "; ".join(cites) if cites else "")


def dependency_context(task: Task, results: Mapping[str, TaskRecord], budget_tokens: int) -> str:
    """Render the results of ``task``'s dependencies within ``budget_tokens``.

    Each dependency gets an equal share of the budget; a short result leaves its unused
    share to the others, so nothing is cut that did not have to be.
    """
    deps = [
        d for d in task.depends_on
        if results.get(d, {}).get("status") == "done" or is_partial(results.get(d, {}))
    ]
    if not deps:
        return ""
    blocks = []
    for dep in deps:
        record = results[dep]
        agent = record.get("task", {}).get("agent", "?")
        kind = "Partial result" if is_partial(record) else "Result"
        blocks.append((dep, agent, kind, _body(record)))
    remaining = budget_tokens
    rendered: dict[str, str] = {}
    # Shortest first, so each block's unused share passes to the longer ones.
    def size(block: tuple[str, str, str, tuple[str, str]]) -> int:
        return _tokens("".join(block[3]))

    for i, (dep, agent, kind, (body, sources)) in enumerate(sorted(blocks, key=size)):
        share = remaining // (len(blocks) - i)
        header = f"## {kind} of task {dep} ({agent})\n"
        fitted = truncate_to_tokens(body, max(0, share - _tokens(header) - _tokens(sources)))
        rendered[dep] = header + fitted + sources
        remaining -= _tokens(rendered[dep])
    return "\n\n".join(rendered[dep] for dep in deps)
