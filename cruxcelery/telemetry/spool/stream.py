"""``SpoolExporter``: an action's records, durable in a Redis stream once its flush returns.

The spool is a Redis stream (the runtime names it ``{prefix}:telemetry``). Forwarders
(``telemetry.forwarder``) read it in a consumer group and deliver to devtools.

- ``export`` encodes each record once (compact UTF-8 JSON: a snapshot, later mutation of the dict
  changes nothing) and buffers the bytes. It never touches the network and never raises.
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
- Fork safety: ``os.register_at_fork`` gives a child fresh locks, an empty buffer and zeroed
  counters (the parent keeps its records); redis-py's pool reconnects in the child by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cruxcelery.telemetry import forksafe
from cruxcelery.telemetry.exporter import FlushResult, JsonRecord
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES, EncodedRecord, body_size, encode_record

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "SpoolExporter",
    "build_entry",
    "decode_entry",
    "spool_client",
    "standby_key",
]

_log = logging.getLogger("cruxcelery.telemetry")

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
    return redis.Redis.from_url(
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
        self._trim = b"~" if approximate else b"="
        self._xadd_head: bytes | None = None
        self._max_records = max(1, max_buffer_records)
        self._max_bytes = max(1, max_buffer_bytes)
        self.breaker = breaker or CircuitBreaker(probe_base_s=0.5, probe_cap_s=5.0)
        self._closed = False
        self._init_state()
        forksafe.track(self)

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: entries keep their order
        self._conn: Any = None  # a connection of our own, outside the pool: no per-call pool overhead
        self._buffer: deque[bytes] = deque()
        self._bytes = 0
        self._spooled = 0  # records written to Redis
        self._entries = 0
        self._reported = (0, 0)  # (spooled, dropped) at the previous flush
        self._dropped = 0  # buffer overflow and exports after shutdown
        self._invalid = 0
        self._oversized = 0
        self._errors = 0
        self._last_error: str | None = None
        self._last_warning = 0.0

    def after_fork(self) -> None:
        self._init_state()

    # -- RecordExporter ------------------------------------------------------------------------------

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Encode and buffer. Never touches the network, never raises."""
        try:
            if self._pid != os.getpid():
                self.after_fork()
            encoded: list[bytes] = []
            invalid = oversized = 0
            for record in records:
                try:
                    data = encode_record(record).data
                except (TypeError, ValueError, RecursionError, AttributeError):
                    invalid += 1
                    continue
                if body_size(len(data), 1) > MAX_BODY_BYTES:
                    oversized += 1  # no request could ever carry it: do not spool it
                else:
                    encoded.append(data)
            with self._lock:
                self._invalid += invalid
                self._oversized += oversized
                if self._closed:
                    self._dropped += len(encoded)
                    return
                self._buffer.extend(encoded)
                self._bytes += sum(len(data) for data in encoded)
                self._enforce_bounds()
        except Exception as exc:
            self._warn("export failed: %r", exc)

    def flush(self, timeout_s: float) -> FlushResult:
        """Append what is buffered as one entry (a backlog: a few). One Redis round trip, bounded
        by the client's socket timeout; none at all while the breaker is open. Never raises."""
        try:
            return self._flush()
        except Exception as exc:
            self._warn("flush failed: %r", exc)
            return FlushResult(status="failed", remaining=len(self._buffer))

    def _flush(self) -> FlushResult:
        if self._pid != os.getpid():
            self.after_fork()
        if not self._buffer:
            with self._lock:
                return self._result("drained")
        if not self._write_lock.acquire(timeout=self._write_wait_s()):
            with self._lock:  # another flush is stuck on a slow Redis: ours ride on the next one
                return self._result("deadline")
        try:
            return self._flush_locked()
        finally:
            self._write_lock.release()

    def _flush_locked(self) -> FlushResult:  # under the write lock
        with self._lock:
            if not self._buffer:
                return self._result("drained")
            if not self.breaker.allow():  # Redis known down: keep the records, do not wait
                self.breaker.is_open_now()
                return self._result("failed")
            taken = list(self._buffer)
            self._buffer.clear()
            self._bytes = 0
        try:
            entries = self._write(taken)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.breaker.failure(error)
            with self._lock:
                self._errors += 1
                self._last_error = error
                self._buffer.extendleft(reversed(taken))
                self._bytes += sum(len(data) for data in taken)
                self._enforce_bounds()
                result = self._result("failed")
            self._warn("cannot append to the spool %s (%s); %d records kept in memory", self.key, error,
                       result.remaining)
            return result
        self.breaker.success()
        with self._lock:
            self._spooled += len(taken)
            self._entries += entries
            return self._result("drained")

    def _write(self, records: list[bytes]) -> int:
        """XADD the records as one entry (a backlog: several, pipelined). Returns the entries."""
        if len(records) <= ENTRY_MAX_RECORDS and sum(len(r) for r in records) <= ENTRY_MAX_BYTES:
            data, lengths = build_entry(records)
            conn = self._conn
            if conn is None:
                conn = self._conn = self.client.connection_pool.make_connection()
            try:
                conn.send_packed_command([self._xadd_packet(data, lengths)], check_health=False)
                conn.read_response()  # raises on an error reply
            except BaseException:
                self._drop_connection()
                raise
            return 1
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for batch in _entries_of(records):
            data, lengths = build_entry(batch)
            queue: Callable[..., Any] = pipe.execute_command
            queue(
                "XADD", self.key, "MAXLEN", self._trim, self.max_entries, "*", DATA, data, LENGTHS, lengths
            )
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

    def _result(self, status: str) -> FlushResult:  # under the lock
        spooled, dropped = self._spooled, self._dropped + self._invalid + self._oversized
        before_spooled, before_dropped = self._reported
        self._reported = (spooled, dropped)
        remaining = len(self._buffer)
        return FlushResult(
            status="drained" if not remaining else ("failed" if status == "failed" else "deadline"),
            delivered=spooled - before_spooled,
            dropped=dropped - before_dropped,
            remaining=remaining,
        )

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush, then drop later exports (counted). The client is the caller's: not closed."""
        result = self.flush(timeout_s)
        with self._lock:
            self._closed = True
        if self._write_lock.acquire(timeout=self._write_wait_s()):
            try:
                self._drop_connection()
            finally:
                self._write_lock.release()
        return result

    def source_health(self) -> dict[str, Any]:
        """Counters since this process started (or forked)."""
        with self._lock:
            return {
                "spooled": self._spooled,
                "entries": self._entries,
                "buffered": len(self._buffer),
                "dropped": self._dropped,
                "invalid": self._invalid,
                "oversized": self._oversized,
                "errors": self._errors,
                "lastError": self._last_error,
                "breaker": self.breaker.stats().state,
            }

    # -- internals -----------------------------------------------------------------------------------

    def _drop_connection(self) -> None:  # under the write lock
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()

    def _write_wait_s(self) -> float:
        timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout")
        return float(timeout) if isinstance(timeout, int | float) and timeout > 0 else DEFAULT_SOCKET_TIMEOUT_S

    def _enforce_bounds(self) -> None:  # under the lock
        buffer = self._buffer
        while buffer and (len(buffer) > self._max_records or self._bytes > self._max_bytes):
            self._bytes -= len(buffer.popleft())
            self._dropped += 1

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_warning < 30.0:
            return
        self._last_warning = now
        with contextlib.suppress(Exception):  # logging must never hurt the host
            _log.warning("cruxcelery telemetry: " + message, *args)


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
