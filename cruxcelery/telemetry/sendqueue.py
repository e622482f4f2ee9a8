"""The delivery queue: encoded records waiting for the sender, oldest first, bounded.

Bounded by record count and by bytes (the records' encoded size); when a bound is exceeded the
OLDEST records are dropped (and the caller counts them). Every record gets an increasing sequence
number on ``push``, so a flush can wait for "everything pushed before me". The batch being sent is
kept apart (``in_flight``); what it could not deliver goes back to the front, so the queue stays in
sequence order. Not thread-safe: ``batch.BatchProcessor`` calls it under its lock, and keeps its
``DeliveryCounts`` with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cruxcelery.telemetry.http.chunking import EncodedRecord
from cruxcelery.telemetry.http.transport import SendReport

__all__ = ["DeliveryCounts", "SendQueue"]


@dataclass(slots=True)
class DeliveryCounts:
    """What became of queued records (cumulative)."""

    delivered: int = 0
    rejected: int = 0
    dropped: int = 0  # queue overflow, exported after shutdown
    invalid: int = 0  # not JSON
    oversized: int = 0
    retries: int = 0

    def add(self, report: SendReport) -> None:
        """Count what one send achieved."""
        self.delivered += report.delivered
        self.rejected += report.rejected
        self.oversized += report.oversized
        self.invalid += report.invalid
        self.retries += report.retries


class SendQueue:
    """Records waiting for delivery, plus the batch in flight."""

    __slots__ = ("_bytes", "_in_flight", "_items", "last_seq", "max_bytes", "max_records")

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self.max_records = max(1, max_records)
        self.max_bytes = max(1, max_bytes)
        self.last_seq = 0
        self._items: deque[EncodedRecord] = deque()
        self._bytes = 0
        self._in_flight: list[EncodedRecord] = []

    @property
    def waiting(self) -> int:
        """Records queued, not counting the batch in flight."""
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        """Records not yet settled: queued plus in flight."""
        return len(self._items) + len(self._in_flight)

    def push(self, records: Sequence[EncodedRecord]) -> int:
        """Append records, numbering them (``seq``). Returns how many old records were dropped."""
        seq = self.last_seq
        size = 0
        for record in records:
            seq += 1
            record.seq = seq
            size += len(record.data)
        self.last_seq = seq
        self._items.extend(records)
        self._bytes += size
        return self._enforce_bounds()

    def take(self, limit: int) -> list[EncodedRecord]:
        """Move up to ``limit`` of the oldest records in flight and return them."""
        items = self._items
        if limit >= len(items):  # everything (the usual case): no record by record bookkeeping
            batch = list(items)
            items.clear()
            self._bytes = 0
        else:
            batch = [items.popleft() for _ in range(limit)]
            self._bytes -= sum(len(record.data) for record in batch)
        self._in_flight.extend(batch)
        return batch

    def settle(self, pending: Sequence[EncodedRecord]) -> int:
        """End the flight: ``pending`` (records still to deliver, in order) go back to the front.
        Returns how many old records were dropped to respect the bounds."""
        self._in_flight = []
        if not pending:  # all settled: nothing comes back, the bounds hold
            return 0
        for record in reversed(pending):
            self._items.appendleft(record)
            self._bytes += record.size
        return self._enforce_bounds()

    def pending_through(self, seq: int) -> bool:
        """True while a record numbered ``seq`` or lower is queued or in flight."""
        # The batch in flight was taken from the front: it holds the oldest records.
        if self._in_flight:
            return self._in_flight[0].seq <= seq
        return bool(self._items) and self._items[0].seq <= seq

    def count_through(self, seq: int) -> int:
        """How many records numbered ``seq`` or lower are queued or in flight."""
        if seq >= self.last_seq:  # everything pushed so far (a flush's usual target): no scan
            return len(self._items) + len(self._in_flight)
        count = sum(1 for record in self._in_flight if record.seq <= seq)
        for record in self._items:
            if record.seq > seq:
                break
            count += 1
        return count

    def _enforce_bounds(self) -> int:
        dropped = 0
        while self._items and (len(self._items) > self.max_records or self._bytes > self.max_bytes):
            self._bytes -= self._items.popleft().size
            dropped += 1
        return dropped
