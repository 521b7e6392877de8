"""What a worker sees: its dependencies' results, selected and fitted to a token budget."""

from __future__ import annotations

from collections.abc import Mapping

from langchain_core.messages.utils import count_tokens_approximately

from graph.state import Task, TaskRecord


def _tokens(text: str) -> int:
    return count_tokens_approximately([("human", text)])


def truncate_to_tokens(text: str, budget: int) -> str:
    """Cut ``text`` to about ``budget`` tokens, keeping the start and marking the cut."""
    if budget <= 0:
        return ""
    if _tokens(text) <= budget:
        return text
    # count_tokens_approximately is ~4 chars per token; shrink until it fits.
    chars = max(budget * 4 - 40, 0)
    while chars > 0 and _tokens(text[:chars]) > budget - 10:
        chars = int(chars * 0.9)
    return text[:chars].rstrip() + "\n[… truncated]"


def dependency_context(task: Task, results: Mapping[str, TaskRecord], budget_tokens: int) -> str:
    """Render the results of ``task``'s dependencies within ``budget_tokens``.

    Each dependency gets an equal share of the budget; a short result leaves its unused
    share to the others, so nothing is cut that did not have to be.
    """
    deps = [d for d in task.depends_on if results.get(d, {}).get("status") == "done"]
    if not deps:
        return ""
    blocks = []
    for dep in deps:
        record = results[dep]
        agent = record.get("task", {}).get("agent", "?")
        cites = record.get("citations") or []
        body = record.get("output", "")
        if cites:
            body += "\nSources: " + "; ".join(cites)
        blocks.append((dep, agent, body))
    remaining = budget_tokens
    rendered: dict[str, str] = {}
    # Shortest first, so each block's unused share passes to the longer ones.
    for i, (dep, agent, body) in enumerate(sorted(blocks, key=lambda b: _tokens(b[2]))):
        share = remaining // (len(blocks) - i)
        header = f"## Result of task {dep} ({agent})\n"
        rendered[dep] = header + truncate_to_tokens(body, share - _tokens(header))
        remaining -= _tokens(rendered[dep])
    return "\n\n".join(rendered[dep] for dep in deps)
