"""A lean threaded HTTP/1.1 server for tests: keep-alive, Content-Length or chunked request bodies,
JSON answers. Each request becomes a ``ReceivedRequest`` handed to an application function that
returns ``(status, body, extra headers)``; the application may block (each connection has its own
daemon thread). ``stop()`` also cuts open keep-alive connections, so a stopped server is really gone.

The stdlib ``BaseHTTPRequestHandler`` is not used: its header parsing (``email.parser``) costs more
than the JSON work of an ingest request, which made it the bottleneck of the exporter benchmark.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from socketserver import StreamRequestHandler
from typing import Any

__all__ = ["Answer", "App", "LeanHTTPServer", "ReceivedRequest", "json_body"]

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_LINE_LIMIT = 65537


@dataclass
class ReceivedRequest:
    """One request as it arrived, and what was answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes  # empty when the declared length was over the server's limit
    payload: Any  # parsed JSON, or None
    arrived_at: float  # time.monotonic()
    content_length: int = 0
    arrived_wall: float = 0.0  # time.time(), to compare with record timestamps
    status: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        records = self.payload.get("records") if isinstance(self.payload, dict) else None
        return records if isinstance(records, list) else []


Answer = tuple[int, bytes, dict[str, str]]
App = Callable[[ReceivedRequest], Answer]


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class LeanHTTPServer(ThreadingHTTPServer):
    """Serves ``app`` on ``(host, port)`` from a daemon thread once ``start()`` is called."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, *, max_body_bytes: int) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def start(self) -> None:
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="test-http-server"
        )
        thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def track(self, conn: socket.socket, active: bool) -> None:
        with self._connections_lock:
            (self._connections.add if active else self._connections.discard)(conn)


class _Handler(StreamRequestHandler):
    disable_nagle_algorithm = True
    timeout = 30
    server: LeanHTTPServer

    def handle(self) -> None:
        self.server.track(self.connection, True)
        try:
            while self._handle_one():
                pass
        except (OSError, ValueError):  # closed, timed out, or garbage
            pass
        finally:
            self.server.track(self.connection, False)

    def _handle_one(self) -> bool:
        line = self.rfile.readline(_LINE_LIMIT)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            self._reply((400, json_body({"error": "bad_request"}), {}), close=True)
            return False
        method, path, version = parts
        headers: dict[str, str] = {}
        while (header := self.rfile.readline(_LINE_LIMIT)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
            length = len(body)
        else:
            length = int(headers.get("content-length") or 0)
            too_big = length > self.server.max_body_bytes
            body = b"" if too_big else self.rfile.read(length)
            keep_alive = keep_alive and not too_big  # the unread body makes the connection unusable
        payload: Any = None
        with contextlib.suppress(ValueError):
            payload = json.loads(body) if body else None
        request = ReceivedRequest(method, path, headers, body, payload, time.monotonic(), length, time.time())
        self._reply(self.server.app(request), close=not keep_alive)
        return keep_alive

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while size := int(self.rfile.readline(_LINE_LIMIT).split(b";")[0].strip(), 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_LINE_LIMIT)
        while self.rfile.readline(_LINE_LIMIT) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def _reply(self, answer: Answer, *, close: bool) -> None:
        status, data, extra = answer
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            *(f"{name}: {value}" for name, value in extra.items()),
        ]
        if close:
            head.append("Connection: close")
        with contextlib.suppress(OSError):  # the client may have given up
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
