"""What a worker sees: its dependencies' results, selected and fitted to a token budget."""

from __future__ import annotations

from collections.abc import Mapping

from core.text import text_tokens as _tokens
from core.text import truncate_to_tokens
from graph.state import Task, TaskRecord


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
