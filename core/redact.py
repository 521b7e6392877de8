"""Secret masking for everything observability writes: reports, stats and traces.

Secrets are collected from the settings (every ``SecretStr``, secret-looking keys of MCP
server definitions, the password of a PostgreSQL URI) and from the environment (API keys
and tokens), then masked wherever they occur inside strings, dict keys and values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from core.settings import Settings

MASK = "[redacted]"
"""What a secret is replaced with."""

MIN_SECRET_LEN = 4
"""Shorter values are not masked: a one-letter placeholder key would blank the whole text."""

_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD|_PASS)$", re.IGNORECASE)
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization)", re.IGNORECASE)

T = TypeVar("T")


def _walk_model(value: Any, depth: int = 0) -> Iterator[str]:
    """Every SecretStr value inside a settings object (models, nested configs, dicts, lists)."""
    if depth > 8:  # settings are shallow; this only guards against odd recursive values
        return
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_model(getattr(value, name, None), depth + 1)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk_model(item, depth + 1)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _walk_model(item, depth + 1)


def secrets_in_mapping(value: Any, depth: int = 0) -> Iterator[str]:
    """String values stored under secret-looking keys (api_key, token, Authorization…)."""
    if depth > 8:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and _SECRET_KEY.search(str(key)):
                yield item
                if " " in item.strip():  # "Bearer sk-…": the token alone must go too
                    yield item.strip().rsplit(" ", 1)[-1]
            elif isinstance(item, SecretStr):
                yield item.get_secret_value()
            else:
                yield from secrets_in_mapping(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secrets_in_mapping(item, depth + 1)


def secret_values(settings: Settings | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Every configured secret, longest first (so a secret containing another is fully masked)."""
    found: set[str] = set(extra)
    if settings is not None:
        found.update(_walk_model(settings))
        found.update(secrets_in_mapping(settings.mcp_servers))
        if settings.checkpoint_uri:
            try:
                password = urlsplit(settings.checkpoint_uri).password
            except ValueError:
                password = None
            if password:
                found.add(password)
    found.update(value for name, value in os.environ.items() if _SECRET_ENV.search(name))
    return sorted((s for s in found if s and len(s) >= MIN_SECRET_LEN), key=lambda s: (-len(s), s))


def _mask(value: Any, secrets: list[str], depth: int = 0) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, SecretStr):
        return MASK
    if depth > 64:  # state is JSON-like and shallow; refuse pathological nesting
        return MASK
    if isinstance(value, Mapping):
        return {_mask(k, secrets, depth + 1): _mask(v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_mask(v, secrets, depth + 1) for v in value)
    return value


def redact(text_or_obj: T, settings: Settings | Iterable[str] | None = None) -> T:
    """A copy of a string or JSON-like object with every configured secret masked.

    ``settings`` may be the Settings (their secrets plus the environment's), an iterable of
    secret strings (plus the environment's), or None (the environment's only).
    """
    if isinstance(settings, Settings) or settings is None:
        secrets = secret_values(settings)
    elif isinstance(settings, str):  # one secret, not an iterable of characters
        secrets = secret_values(None, extra=[settings])
    else:
        secrets = secret_values(None, extra=settings)
    if not secrets:
        return text_or_obj
    result: T = _mask(text_or_obj, secrets)
    return result


def without_secrets(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with every entry under a secret-looking key dropped.

    What a thread stores of its run's setting overrides: a secret given in a run's context
    (an ``api_key`` for one run's model) is never written to a checkpoint; a resume that
    needs it again must send it again (or configure it in the environment)."""
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: without_secrets(v, depth + 1)
            for k, v in value.items()
            if not (_SECRET_KEY.search(str(k)) and isinstance(v, str | SecretStr))
        }
    if isinstance(value, list | tuple):
        return [without_secrets(v, depth + 1) for v in value]
    return value
