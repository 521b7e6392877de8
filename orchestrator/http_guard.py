"""What the LangGraph server refuses before any route sees a request: the browser's attacks.

A server on loopback is still reachable from every web page the user opens. The token
(``orchestrator/server_auth.py``) keeps pages out of the API; this guard also refuses, on
every route (the dashboard's files, ``/ok``, ``/info`` and the API alike):

- a ``Host`` that is not loopback or a name the operator configured
  (``server.allowed_hosts``): a page whose DNS name is re-pointed at 127.0.0.1 (DNS
  rebinding) would otherwise be the server's own origin to the browser;
- an ``Origin`` other than the server's own, unless ``http.cors`` in ``langgraph.json``
  allows it: a page of another origin — another port of 127.0.0.1 included — gets 403, its
  preflights too (no ``access-control-allow-*`` header is ever sent to it);
- a mutating request (POST, PUT, PATCH, DELETE) whose body comes as ``text/plain``,
  form-encoded, ``multipart/form-data`` or with no type: those are the bodies a page can
  send without a CORS preflight. The API takes JSON.

``orchestrator/dashboard.py`` installs it as the custom app's middleware, which LangGraph
runs outside its own (CORS, auth), so it sees every request first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agents import base_settings

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change something on the server."""
SIMPLE_BODY_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
"""Content types a browser sends cross-origin without asking first (no preflight)."""
LOOPBACK_NAMES = frozenset({"localhost"})
"""Loopback by name (addresses are checked as addresses)."""
INTERNAL_ROOT = "/noauth"
"""The ``root_path`` of the SDK's in-process transport (requests from the server itself)."""


@dataclass(frozen=True)
class GuardPolicy:
    """Which hosts and foreign origins the server accepts."""

    allowed_hosts: frozenset[str] = frozenset()
    """Host names besides loopback (lower case)."""
    cors_origins: frozenset[str] = frozenset()
    """Origins ``http.cors.allow_origins`` lets in (``*``: every origin)."""
    cors_origin_regex: re.Pattern[str] | None = field(default=None)
    """``http.cors.allow_origin_regex``, compiled."""

    def host_allowed(self, host: str | None) -> bool:
        """Whether a ``Host`` header names this server: loopback, or a configured name."""
        name = host_name(host)
        if name is None:
            return False
        name = name.rstrip(".")  # "localhost." is "localhost"
        if name in LOOPBACK_NAMES or name in self.allowed_hosts:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def origin_allowed(self, origin: str, scheme: str, host: str) -> bool:
        """Whether a request from ``origin`` may reach the server at ``scheme://host``."""
        if origin.lower() == f"{scheme}://{host}".lower():
            return True
        if "*" in self.cors_origins or origin in self.cors_origins:
            return True
        return self.cors_origin_regex is not None and self.cors_origin_regex.fullmatch(origin) is not None


def host_name(host: str | None) -> str | None:
    """The name part of a ``Host`` header (no port, IPv6 brackets removed), lower case."""
    if not host or any(c in host for c in "/@?#\\ "):
        return None
    try:
        parts = urlsplit(f"//{host}")
        _ = parts.port  # a malformed port raises
    except ValueError:
        return None
    return parts.hostname or None


def cors_policy() -> tuple[frozenset[str], re.Pattern[str] | None]:
    """The foreign origins ``http.cors`` allows, as the running langgraph-api read it (none
    without it, or outside a langgraph-api server: its config module is not imported here,
    as importing it reads the server's environment)."""
    config = sys.modules.get("langgraph_api.config")
    cors = getattr(config, "CORS_CONFIG", None) or {}
    regex = cors.get("allow_origin_regex")
    return frozenset(cors.get("allow_origins") or ()), re.compile(regex) if regex else None


def load_policy() -> GuardPolicy:
    """The policy of this process: ``server.allowed_hosts`` and ``http.cors``. Reads files."""
    hosts = base_settings().server.allowed_hosts
    origins, regex = cors_policy()
    return GuardPolicy(allowed_hosts=frozenset(h.lower().rstrip(".") for h in hosts),
                       cors_origins=origins, cors_origin_regex=regex)


def _refusal(status: int, detail: str) -> tuple[int, bytes]:
    return status, json.dumps({"detail": detail}).encode()


def check(policy: GuardPolicy, scope: Scope) -> tuple[int, bytes] | None:
    """Why ``scope`` is refused, as (status, JSON body); ``None`` when it may go on."""
    headers = Headers(scope=scope)
    host = headers.get("host")
    if not policy.host_allowed(host):
        return _refusal(403, f"host {str(host)[:100]!r} is not this server's: use 127.0.0.1 or localhost "
                             "(an operator adds names with server.allowed_hosts)")
    origin = headers.get("origin")
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    if origin is not None and not policy.origin_allowed(origin, scheme, str(host)):
        return _refusal(403, f"requests from origin {origin[:100]!r} are not allowed (same origin only; "
                             "an operator allows others with http.cors in langgraph.json)")
    if scope["type"] == "http" and scope.get("method", "GET").upper() in MUTATING:
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        has_body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
        if media in SIMPLE_BODY_TYPES or (has_body and not media):
            return _refusal(415, f"send the body as application/json (not {media or 'untyped'})")
    return None


class RequestGuard:
    """ASGI middleware that answers refused requests itself (see the module docstring)."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy | None = None) -> None:
        self.app = app
        self._policy = policy

    async def policy(self) -> GuardPolicy:
        """The policy, loaded on the first request (off the event loop: it reads settings)."""
        if self._policy is None:
            self._policy = await asyncio.to_thread(load_policy)
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or str(scope.get("root_path", "")).startswith(INTERNAL_ROOT):
            await self.app(scope, receive, send)
            return
        refused = check(await self.policy(), scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, body = refused
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
