"""Devtools reading the telemetry spool itself (``cruxcelery dev --redis URL``): no HTTP hop.

A ``Forwarder`` in the spool's consumer group (consumer ``devtools@<host>``, so a restarted server
takes back what it left pending) hands each batch to ``DirectIngest``, which stores it through the
same ``Ingestor`` as ``POST /api/observability/records``, with the same dispositions: accepted and
permanently rejected records are acknowledged, retryable ones stay pending and are retried.
While it runs, the server holds the stream's standby key (refreshed every few seconds, gone
``STANDBY_TTL_S`` after the server stops): forwarders in workers stand by, so delivery costs the
workers nothing but their ``XADD``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

import cruxcelery.devtools.fastjson as fastjson
from cruxcelery.devtools.batch import RawRecord
from cruxcelery.devtools.ingest import IngestResult
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import EncodedRecord
from cruxcelery.telemetry.http.retry import Deadline
from cruxcelery.telemetry.http.transport import SendReport
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.stream import spool_client, standby_key

__all__ = ["DirectIngest", "SpoolReader"]

log = logging.getLogger("cruxcelery.devtools")
STANDBY_TTL_S = 10
_REFRESH_S = 3.0


class DirectIngest:
    """A ``RecordSender`` that stores records in devtools' database instead of POSTing them."""

    max_records = 500

    def __init__(self, ingest: Callable[[list[RawRecord]], IngestResult],
                 ingested: Callable[[IngestResult], None]) -> None:
        self._ingest = ingest
        self._ingested = ingested

    def send_encoded(self, records: list[EncodedRecord], deadline: Deadline, stop: threading.Event | None = None,
                     breaker: CircuitBreaker | None = None) -> SendReport:
        report = SendReport()
        raws: list[RawRecord] = []
        kept: list[EncodedRecord] = []
        for record in records:
            try:
                raws.append(RawRecord(record.data.decode("utf-8"), fastjson.loads(record.data), True))
                kept.append(record)
            except ValueError:  # not JSON: no server would ever take it
                report.rejected += 1
        if not raws:
            return report
        try:
            result = self._ingest(raws)
        except Exception as exc:  # the database is unusable: keep everything pending
            report.pending = kept
            report.server_failed = True
            report.last_error = f"ingest failed: {type(exc).__name__}: {exc}"
            if breaker is not None:
                breaker.failure(report.last_error)
            return report
        report.requests = 1
        for disposition in result.dispositions:
            if disposition.outcome == "accepted":
                report.delivered += 1
            elif disposition.retryable:
                report.pending.append(kept[disposition.index])
            else:
                report.rejected += 1
        if breaker is not None:
            breaker.success()
        self._ingested(result)
        return report

    def reset_after_fork(self) -> None:
        """Nothing to reset: devtools never forks."""


class SpoolReader:
    """Reads ``stream_key`` at ``redis_url`` into devtools until ``stop``."""

    def __init__(self, redis_url: str, stream_key: str, sender: DirectIngest) -> None:
        self.client = spool_client(redis_url, socket_timeout_s=5.0)
        self.standby_key = standby_key(stream_key)
        self.forwarder = Forwarder(
            self.client, stream_key, sender, consumer=f"devtools@{socket.gethostname()}",
            claim_idle_s=30.0, claim_interval_s=5.0, concurrency=1, block_s=1.0,
        )
        self._stop = threading.Event()
        self._holder = threading.Thread(target=self._hold, name="cruxcelery-devtools-standby", daemon=True)

    def start(self) -> SpoolReader:
        self.forwarder.start()
        self._holder.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.forwarder.stop(timeout_s)
        if self._holder.ident is not None:
            self._holder.join(timeout_s)
        with contextlib.suppress(Exception):
            self.client.delete(self.standby_key)  # workers take over at their next check
        with contextlib.suppress(Exception):
            self.client.close()

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.set(self.standby_key, self.forwarder.consumer, ex=STANDBY_TTL_S)
            except Exception as exc:  # Redis down: workers deliver over HTTP meanwhile, if they can
                log.warning("cruxcelery devtools: cannot hold the spool's standby key: %r", exc)
            self._stop.wait(_REFRESH_S)
