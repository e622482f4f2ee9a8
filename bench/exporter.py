"""Exporter throughput: records/s one process pushes through ``HttpExporter`` to a real receiver
(one ``export()`` per record, as the runtime does, then a flush). Goal: >= 20,000 records/s."""

from __future__ import annotations

import time

from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.transport import HttpTransport
from tests.receiver import sample_records


def run(url: str, count: int = 50_000, size: int = 600) -> float:
    records = sample_records(count, size=size)
    exporter = HttpExporter(HttpTransport(url), max_queue_records=count)
    exporter.export(sample_records(1, tag="ffffffffffffffff"))  # warm up: thread, connection
    exporter.flush(5.0)
    started = time.perf_counter()
    for record in records:
        exporter.export([record])
    result = exporter.flush(60.0)
    elapsed = time.perf_counter() - started
    exporter.shutdown(1.0)
    rate = result.delivered / elapsed
    print(f"exporter throughput: {rate:.0f} records/s ({count} records of ~{size} B in {elapsed:.2f} s, "
          f"flush {result.status})  [goal >= 20000]")
    return rate
