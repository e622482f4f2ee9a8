"""A small, real Crux ingest receiver for tests and benchmarks.

``Receiver`` serves ``POST /api/observability/records`` on 127.0.0.1 (a free port) from a
``ThreadingHTTPServer`` (``tests.http_server``, HTTP/1.1 keep-alive), records every request and
answers like devtools: 202 with one disposition per record (all accepted by default), 400 for
malformed JSON, 413 over 1 MiB, 422 for a wrong ``schemaVersion``, 401 for a wrong bearer token
(when ``token`` is set). Programmable misbehaviour:

- ``reject(*ids, retryable=False, times=None)``: reject those recordIds (permanently or retryably);
- ``script(503, 503, retry_after=1)``: answer the next requests with these statuses first;
- ``hang(seconds, times=1)``: hold the next requests without answering (``release()`` ends it);
- ``free_port()``: a closed port, to simulate a receiver that is down.

Usage::

    with Receiver() as receiver:
        exporter = HttpExporter(HttpTransport(receiver.url))
        ...
        assert receiver.record_ids() == [...]

Run ``python -m tests.receiver`` to serve one from the command line (used by the bench).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.http_server import Answer, LeanHTTPServer, ReceivedRequest, json_body

__all__ = ["INGEST_PATH", "ReceivedRequest", "Receiver", "free_port", "sample_record", "sample_records"]

INGEST_PATH = "/api/observability/records"
MAX_BODY_BYTES = 1024 * 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sample_record(n: int, *, tag: str = "0123456789abcdef", size: int = 600) -> dict[str, Any]:
    """A realistic v5 ``span:event`` record of about ``size`` bytes of compact JSON, numbered ``n``
    (``recordId`` ``rec_<tag>_<n base36>``; ``tag`` is 16 hex characters)."""
    record: dict[str, Any] = {
        "schemaVersion": 5,
        "recordId": f"rec_{tag}_{_base36(n)}",
        "type": "span:event",
        "operationId": "run_" + "a1" * 12,
        "runId": "run_" + "a1" * 12,
        "segmentId": "seg_" + "b2" * 12,
        "segmentSeq": n + 1,
        "traceId": "c3" * 16,
        "spanId": "d4" * 8,
        "eventId": f"event_{n:016x}",
        "name": "generation.step",
        "timestamp": "2026-05-16T18:00:00.000Z",
        "attributes": {"step": n, "model": "test-model", "text": ""},
    }
    base = len(json.dumps(record, separators=(",", ":")))
    record["attributes"]["text"] = "x" * max(0, size - base)
    return record


def sample_records(count: int, *, tag: str = "0123456789abcdef", size: int = 600) -> list[dict[str, Any]]:
    return [sample_record(n, tag=tag, size=size) for n in range(count)]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, rest = divmod(n, 36)
        out = digits[rest] + out
        if n == 0:
            return out


@dataclass
class _Rejection:
    code: str
    retryable: bool
    times: int | None  # None: forever


class Receiver:
    """A programmable ingest server. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(self, *, token: str | None = None, max_body_bytes: int = MAX_BODY_BYTES, port: int = 0) -> None:
        self.token = token
        self._requested_port = port
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._rejections: dict[str, _Rejection] = {}
        self._script: deque[tuple[int, str | None]] = deque()
        self._hangs: deque[float] = deque()
        self._release = threading.Event()
        self._server: LeanHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Receiver:
        address = ("127.0.0.1", self._requested_port)
        self._server = LeanHTTPServer(address, self._handle, max_body_bytes=self.max_body_bytes)
        self._server.start()
        return self

    def stop(self) -> None:
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "receiver not started"
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL (what ``CRUX_DEVTOOLS_URL`` would be)."""
        return f"http://127.0.0.1:{self.port}"

    # -- behaviour -----------------------------------------------------------------------------------

    def reject(
        self,
        *record_ids: str,
        code: str = "invalid_record",
        retryable: bool = False,
        times: int | None = None,
    ) -> None:
        """Reject these recordIds (``times`` times, or always), retryably or permanently."""
        with self._lock:
            for record_id in record_ids:
                self._rejections[record_id] = _Rejection(code, retryable, times)

    def script(self, *statuses: int, retry_after: float | str | None = None) -> None:
        """Answer the next requests with these statuses (and ``Retry-After``), then normally."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._script.extend((status, header) for status in statuses)

    def hang(self, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` requests for ``seconds`` without answering, then answer."""
        with self._lock:
            self._release.clear()
            self._hangs.extend([seconds] * times)

    def release(self) -> None:
        """End every current and scheduled hang."""
        with self._lock:
            self._hangs.clear()
            self._release.set()

    # -- inspection ----------------------------------------------------------------------------------

    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def records(self) -> list[dict[str, Any]]:
        """Every accepted record, in arrival order (a retried record may appear twice)."""
        with self._lock:
            return [record for request in self._requests for record in request.accepted]

    def record_ids(self) -> list[str]:
        return [str(record.get("recordId")) for record in self.records()]

    def wait_for(self, *, requests: int = 0, records: int = 0, timeout: float = 5.0) -> bool:
        """Wait until at least that many requests arrived and records were accepted."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                accepted = sum(len(request.accepted) for request in self._requests)
                if len(self._requests) >= requests and accepted >= records:
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def clear(self) -> None:
        """Forget requests and every programmed behaviour."""
        with self._lock:
            self._requests.clear()
            self._rejections.clear()
            self._script.clear()
            self._hangs.clear()

    # -- the server's side ---------------------------------------------------------------------------

    def _handle(self, request: ReceivedRequest) -> Answer:
        with self._lock:
            self._requests.append(request)
            self._changed.notify_all()
            hang = self._hangs.popleft() if self._hangs else 0.0
            scripted = self._script.popleft() if self._script else None
        if hang > 0:
            self._release.wait(hang)
        answer = self._decide(request, scripted)
        with self._lock:
            request.status = answer[0]
            self._changed.notify_all()
        return answer

    def _decide(self, request: ReceivedRequest, scripted: tuple[int, str | None] | None) -> Answer:
        if scripted is not None:
            status, retry_after = scripted
            extra = {} if retry_after is None else {"Retry-After": retry_after}
            return status, json_body({"error": "scripted"}), extra
        if request.path != INGEST_PATH:
            return 404, json_body({"error": "not_found"}), {}
        if request.method != "POST":
            return 405, json_body({"error": "method_not_allowed"}), {}
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, json_body({"error": "unauthorized"}), {}
        if request.content_length > self.max_body_bytes:
            return 413, json_body({"error": "payload_too_large"}), {}
        payload = request.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            return 400, json_body({"error": "malformed"}), {}
        if payload.get("schemaVersion") != 5:
            return 422, json_body({"error": "unsupported_schema_version"}), {}
        answer, accepted = self._dispositions(payload["records"])
        with self._lock:
            request.accepted = accepted
        return 202, answer, {}

    def _dispositions(self, records: list[Any]) -> tuple[bytes, list[dict[str, Any]]]:
        """The 202 answer's body and the accepted records."""
        with self._lock:
            if not self._rejections and all(isinstance(record, dict) for record in records):
                return _all_accepted(records), list(records)  # the fast path (benchmarks)
            dispositions: list[dict[str, Any]] = []
            accepted: list[dict[str, Any]] = []
            for index, record in enumerate(records):
                record_id = record.get("recordId") if isinstance(record, dict) else None
                rule = self._rejections.get(record_id) if isinstance(record_id, str) else None
                if rule is not None and rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._rejections[str(record_id)]
                if not isinstance(record, dict):
                    rule = _Rejection("invalid_record", False, None)
                if rule is None:
                    accepted.append(record)
                code, retryable = ("accepted", False) if rule is None else (rule.code, rule.retryable)
                dispositions.append(
                    {
                        "index": index,
                        "recordId": record_id,
                        "outcome": "accepted" if rule is None else "rejected",
                        "code": code,
                        "retryable": retryable,
                    }
                )
        return json_body({"dispositions": dispositions}), accepted


_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]*")


def _all_accepted(records: list[dict[str, Any]]) -> bytes:
    parts = []
    for index, record in enumerate(records):
        record_id = record.get("recordId")
        if isinstance(record_id, str) and _SAFE_ID.fullmatch(record_id):
            quoted = f'"{record_id}"'
        else:
            quoted = json.dumps(record_id)
        parts.append(
            f'{{"index":{index},"recordId":{quoted},"outcome":"accepted","code":"accepted","retryable":false}}'
        )
    return ('{"dispositions":[' + ",".join(parts) + "]}").encode()


def main() -> None:
    """Serve until stdin closes; print the URL on the first line of stdout."""
    receiver = Receiver().start()
    print(receiver.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        print(json.dumps({"requests": len(receiver.requests()), "records": len(receiver.records())}), flush=True)
        receiver.stop()


if __name__ == "__main__":
    main()
