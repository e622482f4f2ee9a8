"""``HttpExporter``: a bounded in-process queue and a background sender to Crux devtools.

A ``batch.BatchProcessor`` with a thread, sending through ``HttpTransport``:

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
- Records refused by devtools: a body refused whole (400, 413) is split until the one record at fault
  is alone, and only that one is dropped (counted ``rejected``, logged). A wrong URL or token (401,
  403, 404) drops nothing: the records stay queued (the queue's bounds still apply: past them the
  oldest are dropped, counted and logged), the breaker opens and its probes, further and further
  apart (up to 5 s), deliver them once devtools answers again with the right token.
- Fork safety: a forked child gets fresh locks, events, an empty queue (the parent still owns those
  records), zeroed counters, new HTTP connections and, lazily, its own sender thread.
- Warnings go to the ``cruxcelery.telemetry`` logger, at most one per kind every 30 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cruxcelery.telemetry.batch import BatchProcessor
from cruxcelery.telemetry.exporter import FlushResult, JsonRecord
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.retry import RetryPolicy
from cruxcelery.telemetry.http.transport import HttpTransport, display_url

__all__ = ["HttpExporter"]


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
        self.breaker = breaker
        self._batch = BatchProcessor(
            transport, breaker=breaker, policy=policy or transport.policy, max_records=max_queue_records,
            max_bytes=max_queue_bytes, max_body_bytes=transport.max_body_bytes, destination=display_url(transport.url),
        )

    def after_fork(self) -> None:
        """In a forked child: start over with nothing queued; the parent keeps its records."""
        self._batch.after_fork()

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Queue records for delivery. Never blocks on I/O, never raises."""
        self._batch.export(records)

    def flush(self, timeout_s: float) -> FlushResult:
        """Wait (at most ``timeout_s``) until what was exported before this call is settled."""
        return self._batch.flush(timeout_s)

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush (bounded), then stop the sender and close the client. Never raises."""
        return self._batch.shutdown(timeout_s)

    def source_health(self) -> dict[str, Any]:
        """Counters since this process started (or forked): the design's ``sourceHealth``.
        ``dropped`` counts queue overflow, non-JSON records and exports after shutdown;
        ``oversized`` the records over 1 MiB (both are in ``FlushResult.dropped``)."""
        batch = self._batch
        with batch.lock:
            counts = batch.counts
            return {
                "queued": len(batch.queue),
                "delivered": counts.delivered,
                "rejected": counts.rejected,
                "dropped": counts.dropped + counts.invalid,
                "oversized": counts.oversized,
                "retries": counts.retries,
                "lastError": batch.last_error,
                "breaker": self.breaker.stats().state if self.breaker is not None else None,
            }
