"""Persistent task-result cache: the same work on the same inputs reuses a result.

Stored in LangGraph's ``SqliteCache`` under ``data_dir`` (one host), or with
``Settings.state_uri`` in PostgreSQL (``graph.postgres_cache``: one cache for every host
that shares the database; a task cached on one host is a hit on the others). It is consulted inside
``run_task`` rather than as a node ``CachePolicy`` so that a hit is visible: the task is
recorded with ``cache_hit`` (and a line in its history) and its own near-zero timing.

Never around side effects: a task whose agent can call a tool that changes the world or
the workspace (a tool whose declared traits say it mutates, or any MCP tool, whose effects are unknown) is never
served from the cache nor stored in it: a cached "Refund issued" would skip both the refund
and its approval. The key covers what a result depends on: the goal, the agent's
definition and model configuration, the instruction and inputs, the settings that shape
the work, and the data its tools read (the knowledge base and the run's workspace, by
file listing: path, size and modification time).

One cache per process and path (or URI), opened once under a lock: two concurrent first lookups
would otherwise each open the file, and SQLite refuses the second ``journal_mode=WAL``
switch with "database is locked".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from langgraph.cache.base import BaseCache
from langgraph.cache.sqlite import SqliteCache

from agents import AgentSpec
from core.settings import Settings
from graph.postgres_cache import PostgresCache
from tools.context import ToolContext
from tools.registry import tools_where

CACHE_FILE = "result-cache.sqlite"
NAMESPACE = ("task_results", "v2")


_caches: dict[str, BaseCache[Any]] = {}
_open_lock = threading.Lock()


def _open(where: str) -> BaseCache[Any]:
    """The process's one cache for ``where``, a URI or a path (blocking; serialised so it
    opens once)."""
    with _open_lock:
        cache = _caches.get(where)
        if cache is None:
            if where.startswith(("postgresql://", "postgres://")):
                cache = PostgresCache(where)
            else:
                Path(where).parent.mkdir(parents=True, exist_ok=True)
                cache = SqliteCache(path=where)
            _caches[where] = cache
        return cache


async def _cache(settings: Settings) -> BaseCache[Any]:
    where = settings.state_uri or str((Path(settings.data_dir) / CACHE_FILE).resolve())
    cache = _caches.get(where)
    return cache if cache is not None else await asyncio.to_thread(_open, where)


def cacheable(spec: AgentSpec) -> bool:
    """Whether ``spec``'s results may be cached: no side-effecting tool, no MCP tool."""
    return not spec.mcp_servers and not tools_where(spec.builtin_tools, "mutates")


def _listing(root: Path) -> list[tuple[str, int, int]]:
    if not root.is_dir():
        return []
    return sorted(
        (str(p.relative_to(root)), st.st_size, st.st_mtime_ns)
        for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        for st in [p.stat()]
    )


def _data_state(spec: AgentSpec, tools: ToolContext) -> dict[str, Any]:
    """What the agent's tools would read, by listing (blocking)."""
    used = spec.builtin_tools
    state: dict[str, Any] = {}
    if tools_where(used, "reads_workspace"):
        state["workspace"] = _listing(tools.workspace)
    if tools_where(used, "reads_knowledge_base"):
        state["kb"] = [str(tools.kb_dir.resolve()), _listing(tools.kb_dir)]
    return state


async def cache_key(
    spec: AgentSpec, settings: Settings, tools: ToolContext, goal: str,
    task: dict[str, Any], context: str, feedback: str,
) -> str:
    """Identity of a task's work: who does it, with what, on what input and data."""
    model = settings.model_for(spec.model_role).model_dump(mode="json", exclude={"api_key"})
    material = {
        "agent": spec.model_dump(mode="json"), "model": model,
        "goal": goal, "instruction": task.get("instruction", ""),
        "acceptance_criteria": task.get("acceptance_criteria", ""),
        "context": context, "feedback": feedback,
        "settings": {"verify_results": settings.verify_results,
                     "max_agent_steps": settings.limits.max_agent_steps,
                     "reviewer": settings.model_name_for("reviewer")},
        "data": await asyncio.to_thread(_data_state, spec, tools),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


async def lookup(
    settings: Settings, spec: AgentSpec, tools: ToolContext, goal: str,
    task: dict[str, Any], context: str, feedback: str,
) -> tuple[str | None, dict[str, Any] | None]:
    """(the task's cache key, its cached result): (None, None) when the task may not be
    cached (caching off, or an agent with side effects)."""
    if not settings.cache_results or not cacheable(spec):
        return None, None
    key = await cache_key(spec, settings, tools, goal, task, context, feedback)
    cache = await _cache(settings)
    hit = await cache.aget([(NAMESPACE, key)])
    return key, hit.get((NAMESPACE, key))


async def store(settings: Settings, key: str | None, result: dict[str, Any]) -> None:
    """Remember a successful result under the key ``lookup`` gave (None: never cached)."""
    if key is not None:
        cache = await _cache(settings)
        await cache.aset({(NAMESPACE, key): (result, None)})
