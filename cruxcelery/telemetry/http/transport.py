"""HTTP transport to Crux devtools: chunked POSTs, per-record dispositions, bounded retries.

``POST {devtools_url}/api/observability/records`` with body ``{"schemaVersion":5,"records":[...]}``
(at most 50 records and 1 MiB per request, see ``chunking``). The answer is a 2xx, normally 202 with
``{"dispositions": [{"index", "recordId", "outcome", "code", "retryable"}, ...]}``:

- accepted -> delivered; rejected and not retryable -> rejected (dropped and counted);
  rejected and retryable -> only that record is retried; a 2xx without dispositions: all accepted;
  dispositions for another number of records than were sent (a record's text rewrote the body):
  as for a 400;
- HTTP 408/409/425/429/5xx, connection errors and timeouts -> the whole chunk is retried, and the
  rest of that round waits for the next attempt;
- HTTP 400 or 413 (devtools refuses a whole body for one record it cannot read, or one too large)
  -> the chunk is split in two and each half sent again, at once, until the culprit is alone: only
  that record is rejected, its neighbours are delivered;
- HTTP 401, 403 or 404 -> a configuration error (wrong token or URL): nothing is rejected, the
  records come back pending (``SendReport.misconfigured``) and the send stops there; a warning
  naming the URL (never the token) is logged at most once a minute. The caller retries later;
- any other status (422, a 3xx...) -> the chunk is rejected permanently.

Retries follow ``retry.RetryPolicy`` until the deadline given to ``send``; no request timeout ever
exceeds the time left. With a ``breaker.CircuitBreaker``, every answered request closes it, every
server-level failure (unreachable, timeout, retryable status) opens it, and a send stops at the first
such failure instead of retrying: the breaker then decides when to probe again. A configuration
error counts as such a failure (the breaker's growing probe interval is the retry's backoff). What
could not be delivered in time comes back in ``SendReport.pending``.
``send`` and ``send_encoded`` never raise. Requests go over keep-alive ``http.client`` connections
(``connections.ConnectionPool``); a forked child makes its own (the parent's are left alone).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cruxcelery.telemetry.exporter import JsonRecord
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import (
    MAX_BODY_BYTES,
    MAX_RECORDS_PER_REQUEST,
    EncodedRecord,
    build_body,
    chunk_encoded,
    encode_record,
)
from cruxcelery.telemetry.http.connections import ConnectionPool, RequestTimeout
from cruxcelery.telemetry.http.retry import Deadline, RetryPolicy, is_retryable_status, parse_retry_after
from cruxcelery.telemetry.warnlimit import WarningLimiter

__all__ = [
    "CONFIG_ERROR_STATUSES",
    "INGEST_PATH",
    "SPLIT_STATUSES",
    "HttpTransport",
    "SendReport",
    "display_url",
    "merge_reports",
]

INGEST_PATH = "/api/observability/records"
DEFAULT_REQUEST_TIMEOUT_S = 10.0
_MIN_REQUEST_TIMEOUT_S = 0.001
SPLIT_STATUSES: frozenset[int] = frozenset({400, 413})
"""Statuses refusing a whole body for what may be one record in it: the chunk is split."""
CONFIG_ERROR_STATUSES: frozenset[int] = frozenset({401, 403, 404})
"""Statuses meaning the URL or the token is wrong: the records stay pending."""
CONFIG_WARNING_INTERVAL_S = 60.0


@dataclass(slots=True)
class SendReport:
    """What one ``send`` achieved. ``pending``: retryable records not delivered before the deadline
    (in their original order). ``not_before``: a monotonic time before which the server asked not to
    be called again (``Retry-After``). ``unreachable``: the last attempt could not reach the server
    (connection error or timeout). ``server_failed``: the last request failed at the server level
    (unreachable, timeout, or a retryable HTTP status)."""

    delivered: int = 0
    rejected: int = 0
    oversized: int = 0
    invalid: int = 0
    requests: int = 0
    retries: int = 0
    pending: list[EncodedRecord] = field(default_factory=list)
    not_before: float | None = None
    unreachable: bool = False
    server_failed: bool = False
    misconfigured: bool = False
    last_error: str | None = None


def display_url(url: str) -> str:
    """``url`` fit for a log line: without user information (a password) nor query string."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split("?", 1)[0]
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rsplit('@', 1)[-1]}{slash}{path.split('?', 1)[0]}"


def merge_reports(reports: list[SendReport]) -> SendReport:
    """One report for sends made side by side: counts add up, pending records are concatenated."""
    merged = SendReport()
    for report in reports:
        merged.delivered += report.delivered
        merged.rejected += report.rejected
        merged.oversized += report.oversized
        merged.invalid += report.invalid
        merged.requests += report.requests
        merged.retries += report.retries
        merged.pending.extend(report.pending)
        merged.unreachable = merged.unreachable or report.unreachable
        merged.server_failed = merged.server_failed or report.server_failed
        merged.misconfigured = merged.misconfigured or report.misconfigured
        merged.last_error = report.last_error or merged.last_error
        if report.not_before is not None:
            merged.not_before = max(merged.not_before or 0.0, report.not_before)
    return merged


@dataclass(slots=True)
class _ChunkOutcome:
    delivered: int = 0
    rejected: int = 0
    retry: list[EncodedRecord] = field(default_factory=list)
    abort_round: bool = False
    retry_after_s: float | None = None
    unreachable: bool = False
    misconfigured: bool = False
    split: bool = False  # refused whole (400, 413): send each half again
    error: str | None = None


class HttpTransport:
    """Sends records to ``{base_url}/api/observability/records``. Thread-safe; never raises."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        max_records: int = MAX_RECORDS_PER_REQUEST,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.url = base_url.rstrip("/") + INGEST_PATH
        self.policy = policy or RetryPolicy()
        self.request_timeout_s = request_timeout_s
        self.max_records = max_records
        self.max_body_bytes = max_body_bytes
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "cruxcelery-telemetry",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._pool = ConnectionPool(self.url, headers)
        self._config_warnings = WarningLimiter(CONFIG_WARNING_INTERVAL_S)

    def reset_after_fork(self) -> None:
        """In a forked child: forget the inherited connections (without closing the parent's)."""
        self._pool.close()

    def close(self) -> None:
        """Close this process's connections. Never raises."""
        self._pool.close()

    # -- sending -----------------------------------------------------------------------------------

    def send(self, records: Sequence[JsonRecord], *, timeout_s: float) -> SendReport:
        """Encode, chunk and deliver plain records within ``timeout_s``. Never raises."""
        encoded: list[EncodedRecord] = []
        invalid = 0
        for index, record in enumerate(records):
            try:
                encoded.append(encode_record(record, seq=index))
            except (TypeError, ValueError, RecursionError):
                invalid += 1
        report = self.send_encoded(encoded, Deadline(timeout_s))
        report.invalid += invalid
        return report

    def send_encoded(
        self,
        records: Sequence[EncodedRecord],
        deadline: Deadline,
        stop: threading.Event | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> SendReport:
        """Deliver encoded records, retrying until ``deadline`` (or until ``stop`` is set, or until
        ``breaker`` opens). Never raises."""
        report = SendReport()
        to_send: list[EncodedRecord] = list(records)
        try:
            plan = chunk_encoded(to_send, max_records=self.max_records, max_body_bytes=self.max_body_bytes)
            report.oversized = len(plan.oversized)
            chunks = plan.chunks
            attempt = 0
            while True:
                to_send = [record for chunk in chunks for record in chunk]
                retry_next, retry_after = self._round(chunks, attempt, deadline, stop, report, breaker)
                to_send = retry_next
                if not retry_next or report.misconfigured or (stop is not None and stop.is_set()):
                    break  # a wrong URL or token is not fixed in seconds: the caller retries later
                if breaker is not None and breaker.is_open:
                    if retry_after is not None:
                        report.not_before = time.monotonic() + retry_after
                    break
                wait = self.policy.next_delay(attempt, deadline, retry_after)
                if wait is None:
                    if retry_after is not None:
                        report.not_before = time.monotonic() + retry_after
                    break
                if stop is not None:
                    if stop.wait(wait):
                        break
                else:
                    time.sleep(wait)
                attempt += 1
                chunks = chunk_encoded(
                    retry_next, max_records=self.max_records, max_body_bytes=self.max_body_bytes
                ).chunks
        except Exception as exc:
            report.last_error = f"transport error: {type(exc).__name__}: {exc}"
        report.pending = to_send
        return report

    def _round(
        self,
        chunks: list[list[EncodedRecord]],
        attempt: int,
        deadline: Deadline,
        stop: threading.Event | None,
        report: SendReport,
        breaker: CircuitBreaker | None = None,
    ) -> tuple[list[EncodedRecord], float | None]:
        """POST every chunk once (a chunk refused whole by a 400 or 413: each half, at once, down to
        single records). Returns the records to retry and the largest ``Retry-After``."""
        retry_next: list[EncodedRecord] = []
        retry_after: float | None = None
        aborted = False
        waiting = deque(chunks)
        while waiting:
            chunk = waiting.popleft()
            timeout = min(self.request_timeout_s, deadline.remaining())
            if aborted or timeout < _MIN_REQUEST_TIMEOUT_S or (stop is not None and stop.is_set()):
                aborted = True
                retry_next.extend(chunk)
                continue
            outcome = self._post_chunk(chunk, timeout)
            report.requests += 1
            if attempt > 0:
                report.retries += 1
            report.delivered += outcome.delivered
            report.rejected += outcome.rejected
            report.unreachable = outcome.unreachable
            report.server_failed = outcome.abort_round
            if outcome.error is not None:
                report.last_error = outcome.error
            if outcome.misconfigured:
                report.misconfigured = True
                self._config_warnings.warn(
                    "misconfigured", "%s: nothing dropped, delivery retried later (check CRUX_DEVTOOLS_URL and "
                    "CRUX_DEVTOOLS_TOKEN)", outcome.error)
            if breaker is not None:
                if outcome.abort_round:
                    later = None if outcome.retry_after_s is None else time.monotonic() + outcome.retry_after_s
                    breaker.failure(outcome.error, later)
                else:
                    breaker.success()
            if outcome.split:
                middle = len(chunk) // 2
                waiting.extendleft((chunk[middle:], chunk[:middle]))
            retry_next.extend(outcome.retry)
            if outcome.retry_after_s is not None:
                retry_after = max(retry_after or 0.0, outcome.retry_after_s)
            aborted = outcome.abort_round
        return retry_next, retry_after

    def _post_chunk(self, chunk: list[EncodedRecord], timeout_s: float) -> _ChunkOutcome:
        try:
            answer = self._pool.post(build_body(chunk), timeout_s)
        except RequestTimeout as exc:
            return _ChunkOutcome(retry=list(chunk), abort_round=True, unreachable=True, error=f"timeout: {exc!r}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return _ChunkOutcome(
                retry=list(chunk),
                abort_round=True,
                unreachable=True,
                error=f"unreachable: {type(exc).__name__}: {exc}",
            )
        status, content = answer.status, answer.body
        retry_after = parse_retry_after(answer.retry_after)
        if 200 <= status < 300:
            return _apply_dispositions(chunk, content, retry_after)
        if is_retryable_status(status):
            return _ChunkOutcome(retry=list(chunk), abort_round=True, retry_after_s=retry_after, error=f"HTTP {status}")
        if status in CONFIG_ERROR_STATUSES:
            return _ChunkOutcome(retry=list(chunk), abort_round=True, misconfigured=True,
                                 error=f"HTTP {status} from {display_url(self.url)}: {_snippet(content)}")
        if status in SPLIT_STATUSES and len(chunk) > 1:
            return _ChunkOutcome(split=True, error=f"HTTP {status} for {len(chunk)} records: {_snippet(content)}")
        return _ChunkOutcome(
            rejected=len(chunk),
            error=f"HTTP {status}: {len(chunk)} records rejected: {_snippet(content)}",
        )


def _apply_dispositions(chunk: list[EncodedRecord], content: bytes, retry_after: float | None) -> _ChunkOutcome:
    """Sort a 2xx answer's records into delivered / rejected / to retry. Missing or unreadable
    dispositions mean accepted. Dispositions for another number of records than were sent mean the
    server read another body (a record's text closed the records array early): as for a 400."""
    outcome = _ChunkOutcome()
    dispositions = _read_dispositions(content) if b'"dispositions"' in content else None
    if dispositions is not None and len(dispositions) != len(chunk):
        error = f"{len(dispositions)} dispositions for {len(chunk)} records: the body was misread"
        return _ChunkOutcome(split=True, error=error) if len(chunk) > 1 else _ChunkOutcome(rejected=1, error=error)
    if not dispositions or b'"rejected"' not in content:  # nothing rejected (the common case)
        outcome.delivered = len(chunk)
        return outcome
    verdicts: dict[int, bool] = {}  # index -> retryable, for rejected records only
    codes: dict[int, str] = {}
    by_id: dict[str, int] | None = None
    for item in dispositions:
        if not isinstance(item, Mapping) or item.get("outcome") != "rejected":
            continue
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(chunk):
            if by_id is None:
                by_id = {record.record_id: i for i, record in enumerate(chunk) if record.record_id}
            found = by_id.get(str(item.get("recordId")))
            if found is None:
                continue
            index = found
        verdicts[index] = item.get("retryable") is True
        codes[index] = str(item.get("code") or "rejected")
    for index, record in enumerate(chunk):
        retryable = verdicts.get(index)
        if retryable is None:
            outcome.delivered += 1
        elif retryable:
            outcome.retry.append(record)
        else:
            outcome.rejected += 1
    if outcome.retry:
        outcome.retry_after_s = retry_after
    if codes:
        index, code = next(iter(codes.items()))
        outcome.error = f"{len(codes)} records rejected (e.g. {chunk[index].record_id or f'#{index}'}: {code})"
    return outcome


def _read_dispositions(content: bytes) -> list[Any] | None:
    """The answer's ``dispositions`` list, or ``None`` when it has none (or is not JSON)."""
    if not content:
        return None
    try:
        payload = json.loads(content)
    except ValueError:
        return None
    dispositions = payload.get("dispositions") if isinstance(payload, dict) else None
    return dispositions if isinstance(dispositions, list) else None


def _snippet(content: bytes, limit: int = 200) -> str:
    return content[:limit].decode("utf-8", errors="replace").replace("\n", " ")
