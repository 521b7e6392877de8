"""Per-run settings: the process's base settings plus the run's ``configurable`` overrides.

One server process serves many configurations: model choice, budgets and review points
travel in ``config["configurable"]["settings"]`` and are validated like any other source.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from langchain_core.runnables import RunnableConfig

from core.settings import Settings, load_settings

SETTINGS_KEY = "settings"
"""Key in ``configurable`` holding nested setting overrides for one run."""


@lru_cache(maxsize=1)
def base_settings() -> Settings:
    """The process-wide settings (file + environment), loaded once."""
    return load_settings()


_derived: dict[tuple[int, str], tuple[Settings, Settings]] = {}


def _with_overrides(base: Settings, overrides_json: str) -> Settings:
    # Validation is not free and runs once per node: remember the result per base+overrides.
    key = (id(base), overrides_json)
    hit = _derived.get(key)
    if hit is None or hit[0] is not base:
        if len(_derived) > 256:
            _derived.clear()
        hit = (base, base.with_overrides(json.loads(overrides_json)))
        _derived[key] = hit
    return hit[1]


def settings_for(config: RunnableConfig | None, base: Settings | None = None) -> Settings:
    """Settings for the run that ``config`` belongs to."""
    base = base or base_settings()
    overrides: dict[str, Any] = ((config or {}).get("configurable") or {}).get(SETTINGS_KEY) or {}
    if not overrides:
        return base
    return _with_overrides(base, json.dumps(overrides, sort_keys=True, default=str))


def run_id_for(config: RunnableConfig | None) -> str:
    """A stable id for the run's working files: its thread id."""
    thread = ((config or {}).get("configurable") or {}).get("thread_id")
    return str(thread) if thread else "default"
