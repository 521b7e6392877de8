"""LangSmith tracing: readable run names and metadata per task, and secret-free uploads.

Tracing itself is LangChain's: it is on when ``LANGSMITH_TRACING=true`` and an API key is
set. This module only names the runs (``tracing_config``) and wraps a run in a LangSmith
context whose client masks configured secrets in every input, output, metadata and error it
sends (``trace_run``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from core.redact import redact, secret_values
from core.settings import Settings

_TRUE = ("1", "true", "yes", "on")


def tracing_enabled() -> bool:
    """Whether LangSmith tracing is switched on and has an API key."""
    flag = os.environ.get("LANGSMITH_TRACING") or os.environ.get("LANGCHAIN_TRACING_V2") or ""
    key = os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")
    return flag.strip().lower() in _TRUE and bool(key)


def _field(obj: Any, name: str) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping):
        return str(obj.get(name, ""))
    return str(getattr(obj, name, "") or "")


def _thread_id(config: Mapping[str, Any] | None) -> str:
    if config is None:
        try:  # inside a graph node the current config is available implicitly
            from langgraph.config import get_config

            config = get_config()
        except RuntimeError:
            config = {}
    return str((config.get("configurable") or {}).get("thread_id") or "")


def tracing_config(task: Any, agent: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Config to merge into a task's sub-graph call: run name, metadata and tags.

    ``task`` is a Task, a task dict or an id; ``agent`` an AgentSpec or a name; ``config``
    the node's RunnableConfig (read implicitly inside a graph run when omitted).
    """
    task_id, name = _field(task, "id"), _field(agent, "name")
    thread_id = _thread_id(config)
    return {
        "run_name": f"task {task_id} · {name}",
        "metadata": {"task_id": task_id, "agent": name, "thread_id": thread_id},
        "tags": [f"task:{task_id}", f"agent:{name}"],
    }


def anonymizer(settings: Settings | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The masking function LangSmith applies to inputs, outputs, metadata and errors."""
    secrets = secret_values(settings)  # collected once per run, not once per upload
    return lambda data: redact(data, secrets)


def redacting_client(settings: Settings | None) -> Any:
    """A LangSmith client whose anonymizer masks every configured secret before upload."""
    import langsmith

    return langsmith.Client(anonymizer=anonymizer(settings))


@contextmanager
def trace_run(settings: Settings | None, thread_id: str | None = None) -> Iterator[None]:
    """Trace what runs inside through the redacting client, tagged with the thread id.

    A no-op unless tracing is enabled, so it can wrap every run unconditionally.
    """
    if not tracing_enabled():
        yield
        return
    from langsmith import tracing_context

    metadata = {"thread_id": thread_id} if thread_id else {}
    with tracing_context(client=redacting_client(settings), metadata=metadata):
        yield
