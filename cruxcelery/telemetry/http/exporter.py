"""``HttpExporter``: a bounded in-process queue and a background sender to Crux devtools.

- ``export`` serializes the records (a snapshot: later mutation by the caller changes nothing), puts
  them in a queue bounded by record count and bytes (when full, the OLDEST records are dropped and
  counted) and wakes the sender thread. It never blocks on I/O and never raises.
- The sender (one daemon thread per process, started lazily) takes up to 500 records at a time and
  hands them to ``HttpTransport.send_encoded``. Records still retryable after that send go back to the
  front of the queue and the sender holds off (jittered backoff, or the server's ``Retry-After``).
- ``flush(timeout_s)`` waits until every record exported before the call is delivered, rejected or
  dropped, or until the deadline; it never waits longer, even when a request hangs. Its counts are
  those accumulated since the previous flush (the sender works between flushes too).
- Circuit breaker (optional; the runtime always gives one): after a send fails at the server level, a
  flush does not wait on HTTP at all (it returns ``failed`` at once, records stay queued) until a
  probe by the sender succeeds; probes follow ``breaker.CircuitBreaker``'s schedule. A dead devtools
  then costs a flush nothing after the first failure.
- Fork safety: ``os.register_at_fork(after_in_child=...)`` gives a forked child fresh locks, events,
  an empty queue (the parent still owns those records), zeroed counters, new HTTP connections and,
  lazily, its own sender thread.
- Warnings go to the ``cruxcelery.telemetry`` logger, at most one per kind every 30 s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cruxcelery.telemetry import forksafe, otel
from cruxcelery.telemetry.exporter import FlushResult, FlushStatus, JsonRecord
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import EncodedRecord, encode_record, single_record_fits
from cruxcelery.telemetry.http.retry import Backoff, Deadline, RetryPolicy
from cruxcelery.telemetry.http.transport import HttpTransport, SendReport
from cruxcelery.telemetry.sendqueue import DeliveryCounts, SendQueue

__all__ = ["HttpExporter"]

_log = logging.getLogger("cruxcelery.telemetry")

SEND_BATCH_RECORDS = 500
"""Records handed to the transport per send (it splits them into requests of 50 / 1 MiB)."""
IDLE_SEND_BUDGET_S = 2.0
"""How long one send may keep retrying when no flush is waiting for it."""
FLUSH_PROBE_INTERVAL_S = 0.25
LINGER_S = 0.05
"""With no flush waiting, records wait this long for company: a short action's records then
travel in the one request its final flush waits for, not in two serial ones."""
"""During a flush, a backoff (not a server ``Retry-After``) is cut short to this after the last try."""
WARNING_INTERVAL_S = 30.0


class _WarningLimiter:
    """At most one warning per key every ``interval_s``; counts what it suppressed."""

    PREFIX = "cruxcelery telemetry: "

    def __init__(self, interval_s: float = WARNING_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        with contextlib.suppress(Exception):  # logging must never hurt the host
            if suppressed:
                _log.warning(self.PREFIX + message + " (%d similar warnings suppressed)", *args, suppressed)
            else:
                _log.warning(self.PREFIX + message, *args)


class HttpExporter:
    """A ``RecordExporter`` that delivers to Crux devtools over HTTP. Thread-safe, fork-aware."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        max_queue_records: int = 10_000,
        max_queue_bytes: int = 32 * 1024 * 1024,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._transport = transport
        self.breaker = breaker
        self._policy = policy or transport.policy
        self._max_records = max_queue_records
        self._max_bytes = max_queue_bytes
        self._closed = False
        self._init_state()
        forksafe.track(self)

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue = SendQueue(self._max_records, self._max_bytes)
        self._requeued = False
        self._flush_deadlines: list[float] = []
        self._backoff = Backoff(self._policy)
        self._unreachable = False
        self._oldest_at = 0.0
        self._last_error: str | None = None
        self._counts = DeliveryCounts()
        self._reported = DeliveryCounts()
        self._warnings = _WarningLimiter()

    def after_fork(self) -> None:
        """In a forked child: start over with nothing queued; the parent keeps its records."""
        self._init_state()
        self._transport.reset_after_fork()

    # -- RecordExporter ------------------------------------------------------------------------------

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Queue records for delivery. Never blocks on I/O, never raises."""
        try:
            self._export(records)
        except Exception as exc:
            self._warnings.warn("error", "export failed: %r", exc)

    def _export(self, records: Sequence[JsonRecord]) -> None:
        if self._pid != os.getpid():
            self.after_fork()
        encoded: list[EncodedRecord] = []
        invalid = oversized = 0
        for record in records:
            try:
                item = encode_record(record)
            except (TypeError, ValueError, RecursionError):
                invalid += 1
                continue
            if single_record_fits(item, self._transport.max_body_bytes):
                encoded.append(item)
            else:
                oversized += 1
        overflow = 0
        with self._lock:
            self._counts.oversized += oversized
            self._counts.dropped += invalid
            if self._closed:
                self._counts.dropped += len(encoded)
                return
            was_empty = not self._queue.waiting
            if was_empty:
                self._oldest_at = time.monotonic()
            overflow = self._queue.push(encoded)
            if overflow:
                self._counts.dropped += overflow
                self._changed.notify_all()
            if encoded:
                self._ensure_thread()
                if was_empty:
                    self._wake.set()
        if overflow:
            self._warnings.warn("overflow", "queue full, dropped %d oldest records", overflow)
        if oversized:
            self._warnings.warn("oversized", "dropped %d records over 1 MiB", oversized)
        if invalid:
            self._warnings.warn("invalid", "dropped %d records that are not JSON", invalid)

    def flush(self, timeout_s: float) -> FlushResult:
        """Wait (at most ``timeout_s``) until what was exported before this call is settled."""
        try:
            result = self._flush(time.monotonic() + max(0.0, timeout_s))
        except Exception as exc:
            self._warnings.warn("error", "flush failed: %r", exc)
            return FlushResult(status="failed")
        if result.status != "drained":
            undelivered, error = result.remaining, self._last_error
            message = "flush gave up after %.1f s with %d records undelivered (%s; last error: %s)"
            self._warnings.warn("flush", message, timeout_s, undelivered, result.status, error)
        return result

    def _flush(self, deadline: float) -> FlushResult:
        if self._pid != os.getpid():
            self.after_fork()
        breaker = self.breaker
        with self._lock:
            target = self._queue.last_seq
            if breaker is not None and breaker.is_open_now():  # known down: do not wait on HTTP
                return self._result(target)
            self._flush_deadlines.append(deadline)
            try:
                if self._queue.pending_through(target) and not self._closed:
                    self._ensure_thread()
                    self._wake.set()  # also lets the sender shorten a backoff (see _next_batch)
                while self._queue.pending_through(target) and not self._closed:
                    if breaker is not None and breaker.is_open:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                self._flush_deadlines.remove(deadline)
            return self._result(target)

    def _result(self, target: int) -> FlushResult:  # under the lock
        remaining = self._queue.count_through(target)
        status: FlushStatus = "drained"
        if remaining:
            down = self._unreachable or (self.breaker is not None and self.breaker.is_open)
            status = "failed" if down or self._closed else "deadline"
        now, before = self._counts, self._reported
        self._reported = replace(now)
        return FlushResult(
            status=status,
            delivered=now.delivered - before.delivered,
            rejected=now.rejected - before.rejected,
            dropped=(now.dropped + now.oversized) - (before.dropped + before.oversized),
            remaining=remaining,
        )

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush (bounded), then stop the sender and close the client. Never raises."""
        started = time.monotonic()
        result = self.flush(timeout_s)
        try:
            with self._lock:
                self._closed = True
                self._stop.set()
                self._wake.set()
                self._changed.notify_all()
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, timeout_s - (time.monotonic() - started)))
            if thread is None or not thread.is_alive():
                self._transport.close()
        except Exception as exc:
            self._warnings.warn("error", "shutdown failed: %r", exc)
        return result

    def source_health(self) -> dict[str, Any]:
        """Counters since this process started (or forked): the design's ``sourceHealth``.
        ``dropped`` counts queue overflow, non-JSON records and exports after shutdown;
        ``oversized`` the records over 1 MiB (both are in ``FlushResult.dropped``)."""
        with self._lock:
            return {
                "queued": len(self._queue),
                "delivered": self._counts.delivered,
                "rejected": self._counts.rejected,
                "dropped": self._counts.dropped,
                "oversized": self._counts.oversized,
                "retries": self._counts.retries,
                "lastError": self._last_error,
                "breaker": self.breaker.stats().state if self.breaker is not None else None,
            }

    # -- the sender thread ---------------------------------------------------------------------------

    def _ensure_thread(self) -> None:  # under the lock
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="cruxcelery-telemetry-sender", daemon=True)
            self._thread.start()
            self._wake.set()

    def _run(self) -> None:
        with otel.untraced():
            self._loop()

    def _loop(self) -> None:
        wait_s: float | None = None
        while not self._stop.is_set():
            self._wake.wait(wait_s)
            try:
                batch, wait_s, deadline = self._next_batch()
                if batch:
                    self._settle(self._transport.send_encoded(batch, deadline, self._stop, self.breaker))
                    wait_s = 0.0
            except Exception as exc:
                self._warnings.warn("error", "sender error: %r", exc)
                wait_s = 1.0

    def _next_batch(self) -> tuple[list[EncodedRecord], float | None, Deadline]:
        """Take the next batch, or say how long to sleep (``None``: until woken)."""
        now = time.monotonic()
        with self._lock:
            if self._stop.is_set() or not self._queue.waiting:
                self._wake.clear()
                return [], None, Deadline(0.0)
            hold = self._backoff.ready_at(urgent=bool(self._flush_deadlines), probe_interval_s=FLUSH_PROBE_INTERVAL_S)
            if not self._flush_deadlines and self._queue.waiting < SEND_BATCH_RECORDS:
                hold = max(hold, self._oldest_at + LINGER_S)
            if now < hold:
                self._wake.clear()
                return [], hold - now, Deadline(0.0)
            if self.breaker is not None and not self.breaker.allow():  # open: wait for the probe time
                self._wake.clear()
                return [], max(0.01, self.breaker.probe_at() - now), Deadline(0.0)
            batch = self._queue.take(SEND_BATCH_RECORDS)
            self._oldest_at = now
            if self._requeued:
                self._counts.retries += 1
                self._requeued = False
            flush_left = max(self._flush_deadlines, default=now) - now
        return batch, None, Deadline(max(IDLE_SEND_BUDGET_S, flush_left))

    def _settle(self, report: SendReport) -> None:
        now = time.monotonic()
        with self._lock:
            counts = self._counts
            counts.delivered += report.delivered
            counts.rejected += report.rejected
            counts.oversized += report.oversized
            counts.dropped += report.invalid
            counts.retries += report.retries
            if report.requests:
                self._backoff.last_attempt = now
                self._unreachable = report.unreachable
            elif self.breaker is not None:
                self.breaker.release_probe()  # no request made: the probe it was allowed is still owed
            if report.last_error is not None:
                self._last_error = report.last_error
            overflow = self._queue.settle(report.pending)
            counts.dropped += overflow
            if report.pending:
                self._requeued = True
                self._backoff.failed(now, report.not_before)
            else:
                self._backoff.succeeded()
            queued = len(self._queue)
            self._changed.notify_all()
        if report.rejected:
            self._warnings.warn("rejected", "rejected %d records: %s", report.rejected, report.last_error)
        if report.pending:
            url, error = self._transport.url, report.last_error
            self._warnings.warn("retrying", "delivery to %s failing (%s); %d queued", url, error, queued)
        if overflow:
            self._warnings.warn("overflow", "queue full, dropped %d oldest records", overflow)
