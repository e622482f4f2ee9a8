"""Bearer-token access to the devtools server, required when it listens beyond loopback.

A request is let in with ``Authorization: Bearer <token>``, with the ``crux_devtools_token`` cookie,
or with ``?token=<token>`` (the page sets the cookie from it, so a browser needs the token once).
``/api/health`` is always open.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["COOKIE", "TokenGate", "is_loopback"]

COOKIE = "crux_devtools_token"
OPEN_PATHS = frozenset({"/api/health"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def presented_token(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return str(auth[7:].strip())
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return str(query["token"][0])
    cookie_header = headers.get(b"cookie")
    if cookie_header:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(cookie_header.decode("latin-1"))
        except Exception:  # a malformed cookie header is no token
            return None
        if COOKIE in cookies:
            return str(cookies[COOKIE].value)
    return None


class TokenGate:
    """ASGI middleware: 401 unless the request presents ``token``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = presented_token(scope)
        if given is not None and hmac.compare_digest(given.encode(), self.token):
            await self.app(scope, receive, send)
            return
        body = b'{"error":"unauthorized: a bearer token (CRUX_DEVTOOLS_TOKEN) is required"}'
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="cruxcelery devtools"'),
        ]})
        await send({"type": "http.response.body", "body": body})
