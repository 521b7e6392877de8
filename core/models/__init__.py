"""Chat models: the factory, the deterministic test model, structured output, the embedded model.

Names are imported lazily so that light users (the local server's watchdog process, the CLI)
do not pay for importing langchain.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.models.factory import (
        LocalChatOpenAI,
        ModelStatus,
        achat_model,
        chat_model,
        local_slots,
        model_statuses,
        tool_mode,
    )
    from core.models.gguf import (
        ARTIFACTS,
        GGUFArtifact,
        ModelError,
        ModelIntegrityError,
        ModelNotInstalledError,
        ensure_gguf,
    )
    from core.models.local_server import (
        ServerInfo,
        ServerStartError,
        ensure_server,
        running_servers,
        stop_server,
    )
    from core.models.schema_sampler import sample_from_schema
    from core.models.structured import (
        StructuredOutputError,
        StructuredResult,
        StructuredStats,
        Usage,
        ainvoke_structured,
        reset_structured_stats,
        structured_stats,
    )
    from core.models.test_model import TestChatModel

_EXPORTS = {
    "factory": ["LocalChatOpenAI", "ModelStatus", "achat_model", "chat_model", "local_slots", "model_statuses", "tool_mode"],
    "gguf": [
        "ARTIFACTS",
        "GGUFArtifact",
        "ModelError",
        "ModelIntegrityError",
        "ModelNotInstalledError",
        "ensure_gguf",
    ],
    "local_server": [
        "ServerInfo",
        "ServerStartError",
        "ensure_server",
        "running_servers",
        "stop_server",
    ],
    "structured": [
        "StructuredOutputError",
        "StructuredResult",
        "StructuredStats",
        "Usage",
        "ainvoke_structured",
        "reset_structured_stats",
        "structured_stats",
    ],
    "schema_sampler": ["sample_from_schema"],
    "test_model": ["TestChatModel"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ARTIFACTS",
    "GGUFArtifact",
    "LocalChatOpenAI",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ModelStatus",
    "ServerInfo",
    "ServerStartError",
    "StructuredOutputError",
    "StructuredResult",
    "StructuredStats",
    "TestChatModel",
    "Usage",
    "achat_model",
    "ainvoke_structured",
    "chat_model",
    "ensure_gguf",
    "ensure_server",
    "local_slots",
    "model_statuses",
    "reset_structured_stats",
    "running_servers",
    "sample_from_schema",
    "stop_server",
    "structured_stats",
    "tool_mode",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
