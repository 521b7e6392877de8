"""Which errors are retried as they are, and how: the backoff every model-calling step uses."""

from __future__ import annotations

import httpx
import openai
from langgraph.errors import NodeTimeoutError
from langgraph.types import RetryPolicy


def is_transient(exc: Exception) -> bool:
    """Errors worth retrying as they are: the network, rate limits, 5xx, timeouts."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc,
        (ConnectionError, TimeoutError, NodeTimeoutError, httpx.TransportError,
         openai.APIConnectionError, openai.APITimeoutError),
    )


TRANSIENT_RETRY = RetryPolicy(
    max_attempts=4, initial_interval=1.0, backoff_factor=2.0, max_interval=20.0, retry_on=is_transient
)  # 1 + 2 + 4 s of backoff: longer than the embedded model's server takes to restart
"""Backoff for transient model/tool errors; anything else fails a task at once."""
