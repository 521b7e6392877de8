"""The LangGraph server's authentication, the LangGraph way: a custom ``Auth`` object.

``langgraph.json`` names it::

    "auth": {"path": "./orchestrator/server_auth.py:auth", "disable_studio_auth": true}

Every API route (threads, runs, assistants, store, A2A, MCP) then answers only a request
that carries the server's token (``orchestrator/server_token.py``) as
``Authorization: Bearer <token>`` or ``x-api-key: <token>`` (what the SDKs send for their
``api_key``); anything else gets 401. ``disable_studio_auth`` turns off the dev server's
shortcut that lets any request with ``x-auth-scheme: langsmith`` in as "Studio".

There is one principal, the token's holder (the operator or someone they gave it to), so
there are no per-resource handlers: whoever holds the token may do what the API does. The
server cannot trust loopback for this: any web page the user opens can send requests there.
"""

from __future__ import annotations

import asyncio

from langgraph_sdk import Auth

from agents import base_settings
from orchestrator.server_token import ensure_token, token_matches, token_path

auth = Auth()
"""Named by ``langgraph.json``'s ``auth.path``."""

_token: str | None = None


async def server_token() -> str:
    """The server's token, made if missing and read once (off the event loop)."""
    global _token
    if _token is None:  # two first requests at once both read the same file (ensure_token is O_EXCL)
        _token = await asyncio.to_thread(lambda: ensure_token(token_path(base_settings())))
    return _token


def _bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    """Let the request in when it carries the token; 401 otherwise (the token is never echoed)."""
    raw_auth = headers.get(b"authorization")
    raw_key = headers.get(b"x-api-key")
    # An Authorization header wins: an SDK may also send an unrelated LANGSMITH_API_KEY as x-api-key.
    given = (_bearer(raw_auth.decode("latin-1")) if raw_auth is not None
             else raw_key.decode("latin-1").strip() if raw_key is not None else None)
    if not token_matches(given, await server_token()):
        raise Auth.exceptions.HTTPException(
            status_code=401,
            detail="missing or wrong token: send 'Authorization: Bearer <token>' (the token is in "
                   "<data_dir>/server-token; make serve prints it)",
        )
    return {"identity": "operator", "display_name": "token holder", "is_authenticated": True}
