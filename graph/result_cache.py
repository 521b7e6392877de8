"""Persistent task-result cache: the same agent, instruction and inputs reuse a result.

Stored in LangGraph's ``SqliteCache`` under ``data_dir``. It is consulted inside
``run_task`` rather than as a node ``CachePolicy`` so that a hit is visible: the task is
recorded with ``cache_hit`` and its own (near-zero) timing instead of a stale copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from langgraph.cache.sqlite import SqliteCache

from core.settings import Settings

CACHE_FILE = "result-cache.sqlite"
NAMESPACE = ("task_results", "v1")

_caches: dict[Path, SqliteCache] = {}


async def _cache(settings: Settings) -> SqliteCache:
    path = (Path(settings.data_dir) / CACHE_FILE).resolve()
    if path not in _caches:
        def open_cache() -> SqliteCache:  # file I/O: off the event loop
            path.parent.mkdir(parents=True, exist_ok=True)
            return SqliteCache(path=str(path))

        _caches.setdefault(path, await asyncio.to_thread(open_cache))
    return _caches[path]


def cache_key(agent: str, model: str, task: dict[str, Any], context: str, feedback: str) -> str:
    """Identity of a task's work: who does it, with what model, on what input."""
    material = {
        "agent": agent, "model": model, "instruction": task.get("instruction", ""),
        "acceptance_criteria": task.get("acceptance_criteria", ""),
        "context": context, "feedback": feedback,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


async def lookup(settings: Settings, key: str) -> dict[str, Any] | None:
    """A cached result (output, citations, artifacts), or None."""
    if not settings.cache_results:
        return None
    cache = await _cache(settings)
    hit = await cache.aget([(NAMESPACE, key)])
    return hit.get((NAMESPACE, key))


async def store(settings: Settings, key: str, result: dict[str, Any]) -> None:
    """Remember a successful result (failures are never cached)."""
    if settings.cache_results:
        cache = await _cache(settings)
        await cache.aset({(NAMESPACE, key): (result, None)})
