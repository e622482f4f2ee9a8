"""Loopback devtools answer only loopback pages: the ASGI middleware ``LoopbackGuard``.

On a server listening on loopback (the request arrived on a loopback address), a request is refused
403, on every route, when its ``Host`` header is not a loopback name or IP (``localhost``,
``127.0.0.0/8``, ``[::1]``) with the server's port, or when it carries an ``Origin`` that is not an
``http(s)`` origin on such a name (any port). This stops other web pages from writing into or
reading a developer's devtools, directly or by DNS rebinding. ``allowed_hosts`` adds names that
count as loopback (a hostname for the machine, a dev proxy). Beyond loopback, the bearer token
(``auth``) applies instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from cruxcelery.devtools.auth import is_loopback

__all__ = ["LoopbackGuard"]


def _host_and_port(authority: str, default_port: int | None) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit("//" + authority)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return parts.hostname.lower(), port if port is not None else default_port


class LoopbackGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(h.strip().lower() for h in allowed_hosts if h.strip())

    def _known(self, name: str) -> bool:
        return name in self.allowed or is_loopback(name)

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused, or ``None``."""
        server = scope.get("server")
        if not server or not isinstance(server[0], str) or not is_loopback(server[0]):
            return None
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        found = _host_and_port(host, 80)
        if found is None or not self._known(found[0]) or found[1] != server[1]:
            return (f"host {host!r} is not this loopback server (localhost:{server[1]}): allow a name with"
                    " --allowed-host or CRUX_DEVTOOLS_ALLOWED_HOSTS")
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            parts = urlsplit(text)
            named = _host_and_port(parts.netloc, None) if parts.scheme in ("http", "https") else None
            if named is None or not self._known(named[0]):
                return f"origin {text!r} is not a loopback page: devtools answers only pages on this machine"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = self.refusal(scope) if scope["type"] in ("http", "websocket") else None
        if reason is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": f"forbidden: {reason}"}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
