"""``BatchProcessor``: queue, thread, locks, fork re-initialisation and flush with a deadline, written
once for every exporter, as OpenTelemetry's serves spans and logs alike. ``HttpExporter``,
``SpoolExporter`` and ``Forwarder`` each own one and add what is theirs: where records go (a
``RecordSender``) and, for the forwarder, its pass over the stream (the thread's ``step``).

- **queue** (``export``): records are encoded once (a snapshot); one not JSON, or too large for any
  request, is dropped and counted; the others wait in a ``SendQueue`` bounded by records and bytes
  (the OLDEST dropped and counted when full). Never blocks on I/O, never raises.
- **thread**: one daemon per process, untraced, never raising, started by ``export`` or ``start``.
  Its default step sends the queue, ``SEND_BATCH_RECORDS`` at most at a time, a short batch
  lingering ``LINGER_S`` unless a flush waits; what a send leaves retryable goes back to the front
  and the thread holds off (backoff, or ``Retry-After``), a waiting flush cutting a backoff short.
- **flush with a deadline**: with a thread, ``flush`` waits until what was exported before the call
  is settled (delivered, rejected or dropped) or the deadline passes, even if a request hangs;
  ``inline`` (the spool), the caller sends the queue itself, one at a time (``send_lock``, waited
  for at most ``send_wait_s``). Counts are those since the previous flush; status ``drained``, else
  ``failed`` (destination known down, or shut down), else ``deadline``.
- **circuit breaker** (optional): while open, a flush does not wait at all (``failed``, records stay
  queued) until a probe, by the thread or the first inline flush allowed, succeeds.
- **fork safety**: a forked child gets fresh locks and events, an empty queue (the parent keeps its
  records), zeroed counters and no thread; its sender drops the parent's connections, and the
  owner resets its own state (``on_fork``). Warnings: at most one per kind every 30 s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from cruxcelery.telemetry import forksafe, otel
from cruxcelery.telemetry.exporter import FlushResult, FlushStatus, JsonRecord, flush_result
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES, EncodedRecord, encode_records
from cruxcelery.telemetry.http.retry import Backoff, Deadline, RetryPolicy
from cruxcelery.telemetry.http.transport import SendReport
from cruxcelery.telemetry.sendqueue import DeliveryCounts, SendQueue
from cruxcelery.telemetry.warnlimit import WarningLimiter

__all__ = ["BatchProcessor", "RecordSender"]

SEND_BATCH_RECORDS = 500
"""Records handed to the sender per send (``HttpTransport`` splits them into requests of 50 / 1 MiB)."""
IDLE_SEND_BUDGET_S = 2.0
"""How long one send may keep retrying when no flush is waiting for it."""
FLUSH_PROBE_INTERVAL_S = 0.25
"""During a flush, a backoff (not a server ``Retry-After``) is cut short to this after the last try."""
LINGER_S = 0.05
"""With no flush waiting, records wait this long for company: a short action's records then
travel in the one request its final flush waits for, not in two serial ones."""

Step = Callable[[], float | None]
"""The thread's unit of work: returns how long to sleep before the next (``None``: until woken)."""


class RecordSender(Protocol):
    """Where batches go: ``HttpTransport``, the spool's ``StreamWriter``, devtools' own ingest.
    ``send_encoded`` never raises; what it could not deliver in time comes back in ``pending``."""

    max_records: int

    def send_encoded(self, records: list[EncodedRecord], deadline: Deadline, stop: threading.Event | None = None,
                     breaker: CircuitBreaker | None = None) -> SendReport: ...

    def reset_after_fork(self) -> None: ...


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


class BatchProcessor:
    """A bounded queue, a thread, flush with a deadline, per process. Thread-safe, fork-aware."""

    def __init__(
        self,
        sender: RecordSender,
        *,
        breaker: CircuitBreaker | None = None,
        max_records: int = 10_000,
        max_bytes: int = 32 * 1024 * 1024,
        max_body_bytes: int = MAX_BODY_BYTES,
        policy: RetryPolicy | None = None,
        inline: bool = False,
        send_wait_s: float = 0.5,
        step: Step | None = None,
        on_fork: Callable[[], None] | None = None,
        destination: str = "",
        thread_name: str = "cruxcelery-telemetry-sender",
    ) -> None:
        self.sender = sender
        self.breaker = breaker
        self.destination = destination
        self.closed = False
        self._policy = policy or RetryPolicy()
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._max_body_bytes = max_body_bytes
        self._inline = inline
        self._send_wait_s = send_wait_s
        self._step: Step = step or self._send_next
        self._on_fork = on_fork
        self._thread_name = thread_name
        self._init_state()
        forksafe.track(self)

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self.send_lock = threading.Lock()  # one inline sender at a time: what it sends keeps its order
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.queue = SendQueue(self._max_records, self._max_bytes)
        self.counts = DeliveryCounts()
        self._reported = (0, 0, 0)  # delivered, rejected, dropped at the previous flush
        self.last_error: str | None = None
        self.warnings = WarningLimiter()
        self._flush_deadlines: list[float] = []
        self._backoff = Backoff(self._policy)
        self._requeued = False
        self._unreachable = False
        self._oldest_at = 0.0

    def after_fork(self) -> None:
        """In a forked child: start over with nothing queued; the parent keeps its records."""
        self._init_state()
        self.sender.reset_after_fork()
        if self._on_fork is not None:
            self._on_fork()

    def check_fork(self) -> None:
        """Called on every way in: a child forked without the at-fork hook starts over all the same."""
        if self._pid != os.getpid():
            self.after_fork()

    # -- the queue -----------------------------------------------------------------------------------

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Encode and queue records (with a thread: wake it). Never blocks on I/O, never raises."""
        try:
            if self._pid != os.getpid():
                self.after_fork()
            encoded, invalid, oversized = encode_records(records, self._max_body_bytes)
            with self.lock:
                counts = self.counts
                counts.oversized += oversized
                counts.invalid += invalid
                if self.closed:
                    counts.dropped += len(encoded)
                    return
                was_empty = not self.queue.waiting
                overflow = self.queue.push(encoded)
                if overflow:
                    counts.dropped += overflow
                    self._changed.notify_all()
                if encoded and not self._inline:
                    self._ensure_thread()
                    if was_empty:
                        self._oldest_at = time.monotonic()
                        self.wake.set()
        except Exception as exc:
            self.warnings.warn("error", "export failed: %r", exc)
            return
        if overflow or oversized or invalid:
            self._warn(None, overflow, oversized, invalid)

    def _warn(self, report: SendReport | None, overflow: int, oversized: int = 0, invalid: int = 0) -> None:
        """What an export or a send dropped or could not deliver (at most one per kind every 30 s)."""
        if report is not None and report.rejected:
            self.warnings.warn("rejected", "rejected %d records: %s", report.rejected, report.last_error)
        if report is not None and report.pending and not report.misconfigured:  # that one the transport logs
            where, error, queued = self.destination, report.last_error, len(self.queue)
            self.warnings.warn("retrying", "delivery to %s failing (%s); %d queued", where, error, queued)
        if overflow:
            self.warnings.warn("overflow", "queue full, dropped %d oldest records", overflow)
        if oversized:
            self.warnings.warn("oversized", "dropped %d records over 1 MiB", oversized)
        if invalid:
            self.warnings.warn("invalid", "dropped %d records that are not JSON", invalid)

    # -- flush ---------------------------------------------------------------------------------------

    def flush(self, timeout_s: float) -> FlushResult:
        """Settle what was exported before this call, within ``timeout_s``. Never raises."""
        try:
            if self._inline:
                return self._send_now(timeout_s)
            result = self._wait_settled(time.monotonic() + max(0.0, timeout_s))
        except Exception as exc:
            self.warnings.warn("error", "flush failed: %r", exc)
            return FlushResult(status="failed", remaining=len(self.queue))
        if result.status != "drained":
            undelivered, error = result.remaining, self.last_error
            message = "flush gave up after %.1f s with %d records undelivered (%s; last error: %s)"
            self.warnings.warn("flush", message, timeout_s, undelivered, result.status, error)
        return result

    def _wait_settled(self, deadline: float) -> FlushResult:
        """With a thread: wait for it, unless the destination is known down."""
        self.check_fork()
        breaker, queue = self.breaker, self.queue
        with self.lock:
            target = queue.last_seq
            if breaker is not None and breaker.is_open_now():  # known down: do not wait on it
                return self._result(target)
            self._flush_deadlines.append(deadline)
            try:
                if queue.pending_through(target) and not self.closed:
                    self._ensure_thread()
                    self.wake.set()  # also lets the thread shorten a backoff (see _next_batch)
                while queue.pending_through(target) and not self.closed:
                    if breaker is not None and breaker.is_open:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                self._flush_deadlines.remove(deadline)
            return self._result(target)

    def _send_now(self, timeout_s: float) -> FlushResult:
        """Inline: the caller sends the queue, once; not while the breaker is open (but its probe)."""
        if self._pid != os.getpid():
            self.after_fork()
        queue = self.queue
        target = queue.last_seq
        if not queue.pending_through(target):
            with self.lock:
                return self._result(target)
        send_lock = self.send_lock
        if not send_lock.acquire(False) and not send_lock.acquire(timeout=self._send_wait_s):
            with self.lock:  # another flush is stuck on a slow destination: ours ride on the next one
                return self._result(target)
        try:
            with self.lock:
                waiting = queue.waiting
                if not waiting or not self.admit():
                    return self._result(target)
                batch = queue.take(waiting)
            report = self.sender.send_encoded(batch, Deadline(timeout_s), None, self.breaker)
            with self.lock:
                overflow = self._settle(report)
                result = self._result(target)
        finally:
            send_lock.release()
        if report.pending or report.rejected or overflow:
            self._warn(report, overflow)
        return result

    def admit(self) -> bool:
        """May a send start now? Always without a breaker; with one, as it schedules its probes.
        A caller turned away is counted (``short_circuited``)."""
        breaker = self.breaker
        if breaker is None or breaker.allow():
            return True
        breaker.is_open_now()
        return False

    def _settle(self, report: SendReport) -> int:  # under the lock
        """Count what a send did, put what it left pending back in front; returns the overflow."""
        self.counts.add(report)
        if report.requests:
            self._unreachable = report.unreachable
        elif self.breaker is not None:
            self.breaker.release_probe()  # no request made: the probe it was allowed is still owed
        if report.last_error is not None:
            self.last_error = report.last_error
        overflow = self.queue.settle(report.pending)
        self.counts.dropped += overflow
        return overflow

    def _result(self, target: int) -> FlushResult:  # under the lock
        remaining = self.queue.count_through(target)
        status: FlushStatus = "drained"
        if remaining:
            down = self._unreachable or (self.breaker is not None and self.breaker.is_open)
            status = "failed" if down or self.closed else "deadline"
        counts = self.counts
        dropped = counts.dropped + counts.invalid + counts.oversized
        delivered, rejected, dropped_before = self._reported
        self._reported = (counts.delivered, counts.rejected, dropped)
        return flush_result(status, counts.delivered - delivered, counts.rejected - rejected, dropped - dropped_before,
                            remaining)

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush (bounded), then stop the thread and close the sender; later exports are dropped
        and counted. Never raises."""
        started = time.monotonic()
        result = self.flush(timeout_s)
        try:
            with self.lock:
                self.closed = True
            ended = self.stop(timeout_s - (time.monotonic() - started))
            sender = self.sender
            if ended and isinstance(sender, _Closable) and self.send_lock.acquire(timeout=self._send_wait_s):
                try:
                    sender.close()
                finally:
                    self.send_lock.release()
        except Exception as exc:
            self.warnings.warn("error", "shutdown failed: %r", exc)
        return result

    # -- the thread ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        """Run the thread until ``stop``. Idempotent."""
        self.check_fork()
        with self.lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self.stopping.clear()
            self._ensure_thread()

    def stop(self, timeout_s: float) -> bool:
        """Stop the thread (a send in progress is cut short). True if it ended in time."""
        self.stopping.set()
        self.wake.set()
        with self.lock:
            self._changed.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(max(0.0, timeout_s))
        return not thread.is_alive()

    def _ensure_thread(self) -> None:  # under the lock
        if self._thread is None or not self._thread.is_alive():
            self.wake.set()
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with otel.untraced():
            wait_s: float | None = None
            while True:
                self.wake.wait(wait_s)
                if self.stopping.is_set():
                    return
                self.wake.clear()  # before looking for work: a wake-up after this is not lost
                try:
                    wait_s = self._step()
                except Exception as exc:
                    self.warnings.warn("error", "sender error: %r", exc)
                    wait_s = 1.0

    def _send_next(self) -> float | None:
        """The default step: send the next batch of the queue, or say how long to sleep."""
        batch, wait_s, budget_s = self._next_batch()
        if not batch:
            return wait_s
        report = self.sender.send_encoded(batch, Deadline(budget_s), self.stopping, self.breaker)
        now = time.monotonic()
        with self.lock:
            overflow = self._settle(report)
            if report.requests:
                self._backoff.last_attempt = now
            if report.pending:
                self._requeued = True
                self._backoff.failed(now, report.not_before)
            else:
                self._backoff.succeeded()
            self._changed.notify_all()  # flushes waiting
        self._warn(report, overflow)
        return 0.0

    def _next_batch(self) -> tuple[list[EncodedRecord], float | None, float]:
        """The next batch and its time budget, or how long to sleep (``None``: until woken)."""
        now = time.monotonic()
        with self.lock:
            queue, breaker = self.queue, self.breaker
            if self.stopping.is_set() or not queue.waiting:
                return [], None, 0.0
            urgent = bool(self._flush_deadlines)
            hold = self._backoff.ready_at(urgent=urgent, probe_interval_s=FLUSH_PROBE_INTERVAL_S)
            if not urgent and queue.waiting < SEND_BATCH_RECORDS:
                hold = max(hold, self._oldest_at + LINGER_S)
            if now < hold:
                return [], hold - now, 0.0
            if breaker is not None and not breaker.allow():  # open: wait for the probe time
                return [], max(0.01, breaker.probe_at() - now), 0.0
            batch = queue.take(SEND_BATCH_RECORDS)
            self._oldest_at = now
            if self._requeued:
                self.counts.retries += 1
                self._requeued = False
            flush_left = max(self._flush_deadlines, default=now) - now
        return batch, None, max(IDLE_SEND_BUDGET_S, flush_left)
