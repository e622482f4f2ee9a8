"""``SpoolExporter``: an action's records, durable in a Redis stream once its flush returns.

The spool is a Redis stream (the runtime names it ``{prefix}:telemetry``). Forwarders
(``spool.forwarder``) read it in a consumer group and deliver to devtools.

A ``batch.BatchProcessor`` without a thread (``inline``: the flush writes), whose sender is a
``StreamWriter``:

- ``export`` encodes each record once (compact UTF-8 JSON: a snapshot, later mutation of the dict
  changes nothing) and buffers it. It never touches the network and never raises.
- ``flush`` appends everything buffered as ONE stream entry, ``XADD key MAXLEN ~ N * d <json array>
  l <lengths>``, and returns: one Redis round trip. Field ``d`` is the records as a JSON array
  (readable by any consumer with one ``json.loads``); ``l`` their byte lengths, comma-separated, so a
  forwarder slices the array back into records without parsing them (``decode_entry``).
- Redis down or slow: the write fails within the client's socket timeout (``spool_client`` builds a
  client with short timeouts and no retries), the records stay buffered in memory (bounded by
  records and bytes; the OLDEST are dropped and counted when full) and a ``CircuitBreaker`` keeps
  the following flushes off Redis until a probe is due: those cost nothing. The first flush allowed
  after that writes the backlog (entries of at most ``ENTRY_MAX_RECORDS`` records). Never raises.
- What is trimmed by ``MAXLEN`` before a forwarder read it is counted on the reading side
  (``spoolgroup``), where it can be counted exactly.
- Fork safety: a forked child gets fresh locks, an empty buffer, zeroed counters and no
  connection of its own (the parent keeps its records); redis-py's pool reconnects by itself.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cruxcelery.telemetry.batch import BatchProcessor
from cruxcelery.telemetry.exporter import FlushResult, JsonRecord
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import EncodedRecord, encode_record
from cruxcelery.telemetry.http.retry import Deadline
from cruxcelery.telemetry.http.transport import SendReport
from cruxcelery.telemetry.redis_urls import is_cluster, redis_client, socket_timeout_of

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "SpoolExporter",
    "StreamWriter",
    "build_entry",
    "decode_entry",
    "spool_client",
    "standby_key",
]

DEFAULT_MAX_ENTRIES = 100_000
"""``MAXLEN ~`` of the stream: about 800,000 records of a typical action (8 per flush)."""
DEFAULT_SOCKET_TIMEOUT_S = 0.5
ENTRY_MAX_RECORDS = 500
"""When a backlog is written after Redis came back: at most this many records per entry."""
ENTRY_MAX_BYTES = 4 * 1024 * 1024
DATA = b"d"
LENGTHS = b"l"
_RECORD_ID = re.compile(rb'"recordId":"([^"\\]{1,200})"')


def standby_key(stream_key: str) -> str:
    """The key a direct reader of the stream (devtools) holds while it delivers: forwarders in
    workers stand by meanwhile."""
    return f"{stream_key}:direct-reader"


def spool_client(url: str, *, socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S) -> redis.Redis:
    """A redis-py client for the spool: short connect and read timeouts, no retries, bytes replies.
    A flush against a dead Redis then costs at most ``socket_timeout_s``."""
    return redis_client(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
        decode_responses=False,
    )


def build_entry(records: Sequence[bytes]) -> tuple[bytes, bytes]:
    """The ``d`` and ``l`` fields of one stream entry holding these encoded records."""
    return b"[" + b",".join(records) + b"]", ",".join([str(len(r)) for r in records]).encode()


def decode_entry(fields: Mapping[bytes, bytes] | None) -> list[EncodedRecord] | None:
    """The records of one stream entry, as ``EncodedRecord`` (not parsed: sliced by the lengths
    field), or ``None`` when the entry is gone (trimmed) or malformed."""
    if not fields:
        return None
    data = fields.get(DATA)
    if not isinstance(data, bytes) or data[:1] != b"[" or data[-1:] != b"]":
        return None
    lengths = fields.get(LENGTHS)
    if not lengths:
        return [] if data == b"[]" else _parse_entry(data)
    out: list[EncodedRecord] = []
    position = 1
    try:
        sizes = [int(size) for size in lengths.split(b",")]
    except ValueError:
        return _parse_entry(data)
    for size in sizes:
        end = position + size
        chunk = data[position:end]
        if len(chunk) != size or data[end : end + 1] not in (b",", b"]"):
            return _parse_entry(data)
        found = _RECORD_ID.search(chunk, 0, 400)
        out.append(EncodedRecord(found.group(1).decode() if found else "", chunk))
        position = end + 1
    return out if position == len(data) else _parse_entry(data)


def _parse_entry(data: bytes) -> list[EncodedRecord] | None:
    """Slow path for entries written by someone else: parse the array and encode each record."""
    import json

    try:
        records = json.loads(data)
        return [encode_record(record) for record in records] if isinstance(records, list) else None
    except (TypeError, ValueError, AttributeError, RecursionError):
        return None


class StreamWriter:
    """Appends records to the stream: the ``RecordSender`` of a ``SpoolExporter``'s processor.
    One ``XADD`` per call (a backlog: several entries, pipelined), on a connection of its own."""

    max_records = ENTRY_MAX_RECORDS

    def __init__(self, client: redis.Redis, key: str, max_entries: int, approximate: bool) -> None:
        self.client = client
        self.key = key
        self.max_entries = max_entries
        self._trim = b"~" if approximate else b"="
        self._xadd_head: bytes | None = None
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        """Forget the connection (the parent's) and the counters. Also the initial state."""
        self._conn: Any = None  # outside the pool: no per-call pool overhead
        self.entries = 0  # written
        self.errors = 0  # failed writes

    def wait_s(self) -> float:
        """How long a write may take: the client's socket timeout."""
        timeout = socket_timeout_of(self.client)
        return DEFAULT_SOCKET_TIMEOUT_S if timeout is None else timeout

    def send_encoded(self, records: list[EncodedRecord], deadline: Deadline, stop: threading.Event | None = None,
                     breaker: CircuitBreaker | None = None) -> SendReport:
        """Write the records; on failure they all come back pending. Never raises. The write is
        bounded by the client's socket timeout, not by ``deadline``."""
        try:
            entries = self._write(records)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.errors += 1
            if breaker is not None:
                breaker.failure(error)
            return SendReport(requests=1, pending=records, unreachable=True, server_failed=True, last_error=error)
        if breaker is not None:
            breaker.success()
        self.entries += entries
        return SendReport(delivered=len(records), requests=entries)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()

    def _write(self, records: list[EncodedRecord]) -> int:
        """XADD the records as one entry (a backlog: several, pipelined). Returns the entries."""
        data = [record.data for record in records]
        body, lengths = build_entry(data)
        fits = len(data) <= ENTRY_MAX_RECORDS and len(body) - len(data) - 1 <= ENTRY_MAX_BYTES  # the records' bytes
        if fits and not is_cluster(self.client):  # one connection of its own, outside the pool
            conn = self._conn
            if conn is None:
                conn = self._conn = self.client.connection_pool.make_connection()
            try:
                conn.send_packed_command([self._xadd_packet(body, lengths)], check_health=False)
                conn.read_response()  # raises on an error reply
            except BaseException:
                self.close()
                raise
            return 1
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for batch in _entries_of(data):
            body, lengths = build_entry(batch)
            queue: Callable[..., Any] = pipe.execute_command
            queue("XADD", self.key, "MAXLEN", self._trim, self.max_entries, "*", DATA, body, LENGTHS, lengths)
            count += 1
        pipe.execute()
        return count

    def _xadd_packet(self, data: bytes, lengths: bytes) -> bytes:
        """``XADD key MAXLEN ~ N * d <data> l <lengths>`` in RESP, built directly (redis-py's
        ``pack_command`` re-encodes every argument on every call)."""
        head = self._xadd_head
        if head is None:
            parts = [self.key.encode(), b"MAXLEN", self._trim, str(self.max_entries).encode(), b"*", DATA]
            head = self._xadd_head = b"*10\r\n$4\r\nXADD\r\n" + b"".join(
                b"$%d\r\n%s\r\n" % (len(part), part) for part in parts
            )
        return b"".join((head, b"$%d\r\n" % len(data), data, b"\r\n$1\r\nl\r\n$%d\r\n" % len(lengths),
                         lengths, b"\r\n"))


class SpoolExporter:
    """A ``RecordExporter`` appending one Redis stream entry per flush. Thread-safe, fork-aware."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        approximate: bool = True,
        max_buffer_records: int = 10_000,
        max_buffer_bytes: int = 32 * 1024 * 1024,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.max_entries = max_entries
        self.breaker = breaker or CircuitBreaker(probe_base_s=0.5, probe_cap_s=5.0)
        self._writer = StreamWriter(client, key, max_entries, approximate)
        self._batch = BatchProcessor(
            self._writer, breaker=self.breaker, max_records=max(1, max_buffer_records),
            max_bytes=max(1, max_buffer_bytes), inline=True, send_wait_s=self._writer.wait_s(),
            destination=f"the spool {key}",
        )

    def after_fork(self) -> None:
        """In a forked child: start over with nothing buffered; the parent keeps its records."""
        self._batch.after_fork()

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Encode and buffer. Never touches the network, never raises."""
        self._batch.export(records)

    def flush(self, timeout_s: float) -> FlushResult:
        """Append what is buffered as one entry (a backlog: a few). One Redis round trip, bounded
        by the client's socket timeout; none at all while the breaker is open. Never raises."""
        return self._batch.flush(timeout_s)

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush, then drop later exports (counted). The client is the caller's: not closed."""
        return self._batch.shutdown(timeout_s)

    def source_health(self) -> dict[str, Any]:
        """Counters since this process started (or forked)."""
        batch, writer = self._batch, self._writer
        with batch.lock:
            counts = batch.counts
            return {
                "spooled": counts.delivered,
                "entries": writer.entries,
                "buffered": batch.queue.waiting,
                "dropped": counts.dropped,
                "invalid": counts.invalid,
                "oversized": counts.oversized,
                "errors": writer.errors,
                "lastError": batch.last_error,
                "breaker": self.breaker.stats().state,
            }


def _entries_of(records: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and (len(current) >= ENTRY_MAX_RECORDS or size + len(record) > ENTRY_MAX_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        out.append(current)
    return out
