"""``Forwarder``: reads the spool in a consumer group and delivers it to devtools over HTTP.

One pass (``run_once``):

1. While the circuit breaker is open and no probe is due, nothing is read: entries stay in the
   stream (durable) and the pass costs nothing.
2. The batch (at most ``batch_entries`` entries) is filled, in this order, with: the consumer's own
   pending entries (a previous send left some of their records undelivered), entries of dead
   consumers (``XAUTOCLAIM``, idle longer than ``claim_idle_s``, scanned every
   ``claim_interval_s``), then new entries (``spoolgroup.read_new``, which counts what was trimmed
   unread).
3. The records (sliced out of each entry without parsing) go to ``HttpTransport.send_encoded``:
   chunks of at most 50 records / 1 MiB, per-record dispositions, retries with backoff and
   ``Retry-After``, within ``send_budget_s``; a server-level failure opens the breaker and ends the send.
   A body devtools refuses whole (400: one record in it is not JSON; 413) is split until the record
   at fault is alone: only that one is dropped. A wrong URL or token (401, 403, 404) drops nothing:
   the records stay pending, the breaker opens (probes up to 5 s apart retry them) and the transport
   logs the URL at most once a minute.
4. An entry whose records were all accepted or permanently rejected (or oversized) is acknowledged
   (``XACK``); so is an entry that is not a spool entry. What is dropped is counted (``ForwardStats``)
   and logged (at most one warning per kind every 30 s). An entry with records still to deliver
   stays pending; the records already settled are remembered (by entry id and index) so that
   retrying never sends them twice. An entry found trimmed while pending is acknowledged and
   counted as lost.
5. The probe the open breaker allowed a pass is given back however the pass ends (nothing to send,
   Redis failing): a pass that failed on Redis is retried 0.5 s later, never in a tight loop.

In normal operation every record is delivered once. After a crash, another consumer claims the
dead one's entries and sends them whole: delivery is at least once (devtools dedupes by recordId).

``start()`` runs passes in a daemon thread: it waits for new entries with ``XREAD BLOCK`` (no
polling), then ``linger_s`` more for company (fewer, fuller requests), and for the breaker's probe
time when devtools is down. ``stop(timeout_s)`` ends it.
``drain(timeout_s)`` runs passes until nothing is left for the group (tests, ``cruxcelery forward``).
With a ``standby_key``, the thread reads nothing while that key exists: a direct reader (devtools
reading the stream itself) holds it, and workers then spend nothing on delivery.
The records go to any ``RecordSender``: ``HttpTransport``, or devtools' own ingest.
The thread, the pass lock and fork re-initialisation are a ``batch.BatchProcessor``'s (one whose
queue stays empty: the stream is this one's). Fork-aware: in a forked child the forwarder is
stopped, with a new consumer name and a fresh HTTP client; call ``start()`` there again. Never
raises from its thread; ``run_once`` never raises either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import redis

from cruxcelery.telemetry import otel
from cruxcelery.telemetry.batch import BatchProcessor, RecordSender
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_RECORDS_PER_REQUEST, EncodedRecord
from cruxcelery.telemetry.http.retry import Deadline
from cruxcelery.telemetry.http.transport import SendReport, merge_reports
from cruxcelery.telemetry.redis_urls import socket_timeout_of
from cruxcelery.telemetry.sendqueue import DeliveryCounts
from cruxcelery.telemetry.spool import group as spoolgroup
from cruxcelery.telemetry.spool.group import DEFAULT_GROUP, Entry
from cruxcelery.telemetry.spool.stream import decode_entry
from cruxcelery.telemetry.warnlimit import WarningLimiter

__all__ = ["ForwardStats", "Forwarder", "RecordSender"]

_log = logging.getLogger("cruxcelery.telemetry")
STANDBY_CHECK_S = 2.0
PROBE_BUSY_WAIT_S = 0.1


@dataclass(slots=True)
class ForwardStats(DeliveryCounts):
    """Cumulative counters of one forwarder (since it was made, or its process forked): what its
    sends achieved (``DeliveryCounts``) and what it did with the stream."""

    passes: int = 0
    entries_read: int = 0
    entries_claimed: int = 0
    entries_acked: int = 0
    malformed: int = 0  # entries that are not spool entries (acknowledged, skipped)
    lost_pending: int = 0  # trimmed while pending
    trimmed_unread: int = 0  # trimmed before the group read them (seen by this forwarder)
    redis_errors: int = 0
    last_error: str | None = None
    pending_records: int = 0


@dataclass(slots=True)
class PassResult:
    """What one ``run_once`` did. ``idle``: nothing was there to send (or the breaker was open)."""

    entries: int = 0
    delivered: int = 0
    acked: int = 0
    pending_records: int = 0
    idle: bool = True
    skipped: bool = False  # the breaker was open


class Forwarder:
    """Spool -> devtools. Thread-safe for one runner at a time (``run_once`` calls are serialized)."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        transport: RecordSender,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        batch_entries: int = 100,
        claim_idle_s: float = 60.0,
        claim_interval_s: float = 10.0,
        send_budget_s: float = 5.0,
        block_s: float = 1.0,
        breaker: CircuitBreaker | None = None,
        concurrency: int = 2,
        linger_s: float = 0.0,
        standby_key: str | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.transport = transport
        self.group = group
        self.batch_entries = max(1, batch_entries)
        self.claim_idle_s = claim_idle_s
        self.claim_interval_s = claim_interval_s
        self.send_budget_s = send_budget_s
        self.block_s = block_s
        self.breaker = breaker or CircuitBreaker()
        self.concurrency = max(1, concurrency)
        self.linger_s = max(0.0, linger_s)
        self.standby_key = standby_key
        self._fixed_consumer = consumer
        self._reset()
        self._batch = BatchProcessor(
            transport, breaker=self.breaker, step=self._step, on_fork=self._reset, thread_name="cruxcelery-forwarder"
        )

    def _reset(self) -> None:
        """This process's reading state (also in a forked child, after the processor's)."""
        self.consumer = self._fixed_consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._group_ready = False
        self._own_pending = True  # a restarted consumer (fixed name) may have some: look once
        self._settled: dict[bytes, set[int]] = {}
        self._claim_cursor = b"0-0"
        self._next_claim = 0.0
        self._last_id = b"$"
        self._standby_until = 0.0  # monotonic: until then, a direct reader was seen delivering
        self._pool: ThreadPoolExecutor | None = None  # made lazily: threads do not survive a fork
        self._warnings = WarningLimiter()
        self.stats = ForwardStats()

    def after_fork(self) -> None:
        self._batch.after_fork()

    # -- running -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run passes in a daemon thread until ``stop``. Idempotent."""
        self._batch.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread (an HTTP send in progress is cut short). True if it ended in time."""
        ended = self._batch.stop(timeout_s)
        pool, self._pool = self._pool, None
        if pool is not None and ended:
            pool.shutdown(wait=False)
        return ended

    @property
    def running(self) -> bool:
        return self._batch.running

    def drain(self, timeout_s: float) -> bool:
        """Run passes until the group has nothing unread and this consumer nothing pending, or until
        the deadline. True when drained."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        if not self.running:
            self._batch.stopping.clear()  # a stopped forwarder may still be drained by hand
        while True:
            result = self.run_once(min(self.send_budget_s, max(0.0, deadline - time.monotonic())))
            if result.idle and not result.skipped and not self._own_pending:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if result.skipped and self._batch.stopping.wait(min(left, self._probe_wait())):
                return False  # devtools down: waited for the next probe, and was stopped

    def run_once(self, budget_s: float | None = None) -> PassResult:
        """One pass: read, send, acknowledge. Never raises."""
        self._batch.check_fork()
        with self._batch.send_lock:  # one pass at a time
            try:
                return self._pass(self.send_budget_s if budget_s is None else budget_s)
            except Exception as exc:
                self.stats.redis_errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._group_ready = False  # a flushed Redis loses the group: make it again
                self._own_pending = True  # what this pass read may be pending unacknowledged
                with contextlib.suppress(Exception):
                    _log.warning("cruxcelery forwarder: pass failed: %r", exc)
                return PassResult(idle=False)

    def _step(self) -> float:
        """The thread's step: one pass (unless standing by), then how long to sleep."""
        if self._standing_by():
            return STANDBY_CHECK_S
        result = self.run_once()
        if self._batch.stopping.is_set():
            return 0.0
        if result.skipped:
            return min(self._probe_wait(), self.block_s)
        if result.idle and not self._own_pending:
            return self._block_for_new()
        return 0.0 if result.entries else 0.5  # no entries: Redis trouble, do not spin

    def _probe_wait(self) -> float:
        """How long to wait, the breaker open, before the next pass: until its probe is due, or (due
        already, but another sender sharing the breaker is making it) ``PROBE_BUSY_WAIT_S``."""
        wait = self.breaker.probe_at() - time.monotonic()
        return wait if wait > 0 else PROBE_BUSY_WAIT_S

    def _standing_by(self) -> bool:
        """True while a direct reader holds ``standby_key`` (checked every ``STANDBY_CHECK_S``)."""
        if self.standby_key is None:
            return False
        now = time.monotonic()
        if now < self._standby_until:
            return True
        try:
            held = bool(self.client.exists(self.standby_key))
        except Exception:
            held = False
        self._standby_until = now + STANDBY_CHECK_S if held else 0.0
        return held

    def _block_for_new(self) -> float:
        """Wait (at most ``block_s``, within the client's socket timeout) for an entry after the last
        one seen, with ``XREAD BLOCK``: an idle forwarder costs Redis nothing. Returns how long to
        sleep then: ``linger_s`` if one came (a few more may arrive: fewer requests)."""
        timeout = socket_timeout_of(self.client)
        block = self.block_s if timeout is None else min(self.block_s, timeout * 0.8)
        try:
            call = cast(Any, self.client).execute_command
            reply = call("XREAD", "COUNT", 1, "BLOCK", max(1, int(block * 1000)), "STREAMS", self.key, self._last_id)
        except Exception:
            return block
        return self.linger_s if reply else 0.0

    # -- one pass ------------------------------------------------------------------------------------

    def _pass(self, budget_s: float) -> PassResult:
        self.stats.passes += 1
        if not self._batch.admit():
            return PassResult(skipped=True)
        try:
            if not self._group_ready:
                spoolgroup.ensure_group(self.client, self.key, self.group)
                self._group_ready = True
            entries = self._collect()
            return self._send(entries, budget_s) if entries else PassResult()
        finally:
            # The probe this pass may have been allowed is owed back unless a request settled it
            # (nothing to send, or Redis failed): else the breaker would never allow another.
            self.breaker.release_probe()

    def _collect(self) -> list[Entry]:
        room = self.batch_entries
        entries: list[Entry] = []
        if self._own_pending:
            own = spoolgroup.read_own(self.client, self.key, self.group, self.consumer, room)
            self._own_pending = False
            if len(own) < room:  # the whole pending list was seen: forget what is no longer there
                present = {entry.id for entry in own}
                self._settled = {k: v for k, v in self._settled.items() if k in present}
            entries.extend(own)
            room -= len(own)
        now = time.monotonic()
        if room > 0 and now >= self._next_claim:
            cursor, claimed, deleted = spoolgroup.autoclaim(
                self.client, self.key, self.group, self.consumer, self.claim_idle_s, self._claim_cursor, room
            )
            self._claim_cursor = cursor
            if cursor == b"0-0":
                self._next_claim = now + self.claim_interval_s
            if deleted:
                self.stats.lost_pending += deleted
                spoolgroup.count_lost_pending(self.client, self.key, self.group, deleted)
            self.stats.entries_claimed += len(claimed)
            entries.extend(claimed)
            room -= len(claimed)
        if room > 0:
            new = spoolgroup.read_new(self.client, self.key, self.group, self.consumer, room)
            if new.trimmed > 0:
                self.stats.trimmed_unread += new.trimmed
                with contextlib.suppress(Exception):
                    _log.warning("cruxcelery forwarder: %d spool entries were trimmed before delivery", new.trimmed)
            self._last_id = new.last_id
            self.stats.entries_read += len(new.entries)
            entries.extend(new.entries)
        return entries

    def _send(self, entries: list[Entry], budget_s: float) -> PassResult:
        records: list[EncodedRecord] = []
        owners: list[tuple[bytes, int]] = []  # by record seq: (entry id, index in the entry)
        sizes: dict[bytes, int] = {}  # entry id -> records in it
        lost = malformed = 0
        for entry in entries:
            decoded = decode_entry(entry.fields)
            if decoded is None:
                sizes[entry.id] = 0
                if entry.fields is None:
                    lost += 1
                else:
                    malformed += 1
                continue
            sizes[entry.id] = len(decoded)
            settled = self._settled.get(entry.id, ())
            for index, record in enumerate(decoded):
                if index in settled:
                    continue
                record.seq = len(owners)
                owners.append((entry.id, index))
                records.append(record)
        report = self._deliver(records, Deadline(budget_s))
        stats = self.stats
        stats.add(report)
        stats.malformed += malformed
        if report.last_error is not None:
            stats.last_error = report.last_error
        self._warn(report, malformed)
        unsettled: dict[bytes, set[int]] = {}
        for record in report.pending:
            entry_id, index = owners[record.seq]
            unsettled.setdefault(entry_id, set()).add(index)
        # Remember what is settled before acknowledging: if the XACK fails, a re-read sends nothing twice.
        for entry_id, index in owners:
            left = unsettled.get(entry_id)
            if left is None or index not in left:
                self._settled.setdefault(entry_id, set()).add(index)
        done = [entry_id for entry_id in sizes if entry_id not in unsettled]
        self._own_pending = bool(unsettled)
        acked = spoolgroup.ack(self.client, self.key, self.group, done)
        for entry_id in done:
            self._settled.pop(entry_id, None)
        stats.entries_acked += acked
        if lost:
            stats.lost_pending += lost
            spoolgroup.count_lost_pending(self.client, self.key, self.group, lost)
        stats.pending_records = len(report.pending)
        return PassResult(
            entries=len(entries), delivered=report.delivered, acked=acked,
            pending_records=len(report.pending), idle=False,
        )

    def _warn(self, report: SendReport, malformed: int) -> None:
        """What this pass dropped, at most one warning per kind every 30 s (a wrong URL or token is
        logged by the transport, once a minute)."""
        if report.rejected:
            self._warnings.warn("rejected", "forwarder dropped %d records devtools refused (%s)", report.rejected,
                                report.last_error)
        if report.oversized:
            self._warnings.warn("oversized", "forwarder dropped %d records over 1 MiB", report.oversized)
        if malformed:
            self._warnings.warn("malformed", "forwarder dropped %d spool entries that are not spool entries",
                                malformed)

    def _deliver(self, records: list[EncodedRecord], deadline: Deadline) -> SendReport:
        """Send with ``concurrency`` requests in flight (the records split in contiguous runs of
        whole requests), so that our side's work overlaps the server's."""
        per_request = self.transport.max_records or MAX_RECORDS_PER_REQUEST
        requests = -(-len(records) // per_request)
        if self.concurrency == 1 or requests < 2:
            return self.transport.send_encoded(records, deadline, self._batch.stopping, self.breaker)
        runs = min(self.concurrency, requests)
        size = -(-requests // runs) * per_request
        slices = [records[start : start + size] for start in range(0, len(records), size)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency - 1, thread_name_prefix="cruxcelery-forwarder-send")
        futures = [
            self._pool.submit(self._send_untraced, part, deadline) for part in slices[1:]
        ]
        reports = [self.transport.send_encoded(slices[0], deadline, self._batch.stopping, self.breaker)]
        reports += [future.result() for future in futures]
        return merge_reports(reports)

    def _send_untraced(self, records: list[EncodedRecord], deadline: Deadline) -> SendReport:
        with otel.untraced():
            return self.transport.send_encoded(records, deadline, self._batch.stopping, self.breaker)
