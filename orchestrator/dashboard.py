"""The live dashboard: static pages served by the LangGraph server itself, at ``/dashboard/``.

``langgraph.json`` names ``app`` below as the server's custom HTTP app
(``{"http": {"app": "orchestrator.dashboard:app"}}``); LangGraph merges its own routes
(``/threads``, ``/runs`` …) into it, so the page talks to the same origin and works under
``langgraph dev`` and a deployed server alike. The page is plain ES modules from the
``dashboard/`` folder — no build step, nothing fetched from the internet: every response
carries a Content-Security-Policy that lets the page load and connect to its own origin only.

The app also carries the server's request guard (``orchestrator/http_guard.py``): LangGraph
runs a custom app's middleware outside its own, so the guard sees every request of the
server first. The page's files need no token (they hold no data); every API call it makes
carries the token, which the page takes from the fragment of the address ``make serve``
printed (``#token=…``) and keeps in ``sessionStorage`` (this tab only).
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.http_guard import RequestGuard

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
"""The page's files: ``index.html``, ES modules and the stylesheet."""

DASHBOARD_PATH = "/dashboard"
"""Where the server serves the page."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'self'"
)
"""Same origin only: the browser itself refuses anything from elsewhere."""


class _Secured:
    """Add the CSP and no-cache headers to every response of the wrapped app."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message = {**message, "headers": headers}
            await send(message)

        await self.inner(scope, receive, with_headers)


async def _to_index(request: Request) -> Response:
    return RedirectResponse(url=f"{DASHBOARD_PATH}/", status_code=307)


DIAGNOSIS_PATH = f"{DASHBOARD_PATH}/diagnosis"
"""Where the page posts a thread's state values to get its failure diagnosis."""
MAX_DIAGNOSIS_BYTES = 16 * 1024 * 1024
"""The largest state the diagnosis reads (a thread's values, as ``GET /threads/{id}/state`` gave them)."""


async def _diagnosis(request: Request) -> Response:
    """The "why" panel's data: the diagnosis of the thread values the page posts, by the
    same code as ``orchestrator report`` (orchestrator/observability/diagnosis.py). It reads
    nothing on the server: the page already holds the values (read with its token), so
    the answer holds nothing the caller did not send."""
    from graph.synthesis import final_status
    from orchestrator.observability.diagnosis import diagnose

    body = await request.body()
    if len(body) > MAX_DIAGNOSIS_BYTES:
        return JSONResponse({"detail": f"state too large to diagnose (over {MAX_DIAGNOSIS_BYTES} bytes)"}, 413)
    try:
        values = json.loads(body or b"null")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        return JSONResponse({"detail": "send a thread's state values as one JSON object"}, 400)
    recorded = str(values.get("status") or "")
    status, reason = final_status(values) if recorded in ("completed", "stopped", "failed") else (recorded, "")
    return JSONResponse({"status": status, "stop_reason": reason or str(values.get("stop_reason") or ""),
                         "diagnosis": diagnose(values, status)})


def dashboard_url(base_url: str) -> str:
    """The page's address on a server at ``base_url``."""
    return f"{base_url.rstrip('/')}{DASHBOARD_PATH}/"


app = Starlette(
    routes=[
        Route(DASHBOARD_PATH, _to_index, methods=["GET", "HEAD"]),
        Route(DIAGNOSIS_PATH, _diagnosis, methods=["POST"]),  # before the mount, which would take it
        Mount(DASHBOARD_PATH, app=_Secured(StaticFiles(directory=DASHBOARD_DIR, html=True)), name="dashboard"),
    ],
    middleware=[Middleware(RequestGuard)],
)
"""The server's custom HTTP app (LangGraph adds its API routes to it)."""
