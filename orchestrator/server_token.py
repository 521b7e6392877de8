"""The LangGraph server's access token: made once, kept ``0600`` in the data dir.

``make serve`` runs ``python -m orchestrator.server_token --port PORT`` before it starts the
server: the first time, that makes a random token at ``<data_dir>/server-token`` (readable
by its owner only); every time, it prints the dashboard's address with the token in its
fragment (``#token=…``: a browser never sends the fragment to the server, so it reaches no
access log) and how to hand the token to the other clients. The server's ``auth``
(``orchestrator/server_auth.py``) accepts a request only when it carries that token.

Clients: the CLI's ``--url`` and the SDKs read ``LANGGRAPH_API_KEY`` (the SDKs' own
variable); the CLI falls back to the token file of its own data dir, so on the machine
that runs the server nothing needs setting.
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets
import socket
import stat
import sys
from pathlib import Path

from core.settings import ConfigError, Settings, load_settings

TOKEN_FILE = "server-token"
"""The token's file name, under ``data_dir``."""
TOKEN_ENV = "LANGGRAPH_API_KEY"
"""Where clients look for the token first (the variable the Python and JS SDKs read)."""
TOKEN_BYTES = 32
"""Random bytes in a new token (URL-safe base64, 43 characters)."""
_MAX_TOKEN_CHARS = 512


class TokenError(ConfigError):
    """The token file is missing, unsafe or unreadable; the message says which and what to do."""


def token_path(settings: Settings) -> Path:
    """Where the server's token lives for these settings."""
    return settings.data_dir / TOKEN_FILE


def read_token(path: Path) -> str:
    """The token in ``path``, refusing a file others could read or replace."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise TokenError(f"no server token at {path}: start the server with `make serve` to make one") from None
    except OSError as exc:
        raise TokenError(f"cannot read the server token {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise TokenError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise TokenError(f"{path} is readable or writable by others (mode {stat.S_IMODE(info.st_mode):o}): "
                             f"chmod 600 {path}")
        if info.st_uid != os.getuid():
            raise TokenError(f"{path} belongs to another user (uid {info.st_uid})")
        token = f.read(_MAX_TOKEN_CHARS + 1).decode("ascii", "replace").strip()
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isprintable():
        raise TokenError(f"{path} does not hold a token: delete it and run `make serve` again")
    return token


def ensure_token(path: Path) -> str:
    """The token in ``path``, made (``0600``, data dir ``0700`` if new) when there is none."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # made before (or by a concurrent start): use that one
        return read_token(path)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def token_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the token (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def client_token(settings: Settings | None = None) -> str | None:
    """The token a client sends: ``LANGGRAPH_API_KEY``, else this data dir's token file, else none."""
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    try:
        return read_token(token_path(settings or load_settings()))
    except TokenError:
        return None


def dashboard_address(host: str, port: int, token: str) -> str:
    """The dashboard's address with the token in its fragment."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard/#token={token}"


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Make the token if needed and print what a user needs to open the dashboard."""
    parser = argparse.ArgumentParser(description="make the server's access token; print the dashboard address")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        path = token_path(load_settings())
        token = ensure_token(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # `langgraph dev` moves to a random port when the one asked for is taken; the address
    # printed here would then be wrong, so stop first.
    if not _port_free(args.host, args.port):
        print(f"error: port {args.port} on {args.host} is in use: make serve PORT=<another port>", file=sys.stderr)
        return 2
    print(f"Dashboard: {dashboard_address(args.host, args.port, token)}")
    print("  (open this address: the part after # is the access token; it is not sent to the server")
    print("  in the URL and the page keeps it for this tab only)")
    print(f"Clients (orchestrator --url, the SDKs): export {TOKEN_ENV}=\"$(cat {path})\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
