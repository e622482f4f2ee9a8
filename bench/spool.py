"""Telemetry spool figures (issue 8), against the local Redis (database 9) and the test receiver in
its own process:

- spool append: ``SpoolExporter.flush`` of one action's 8 records (~500 B each), p50/p90 (goal
  <= 0.15 ms p50), and export + flush together;
- forwarder throughput: records/s from a spooled backlog to the receiver (goal >= 20,000/s);
- a dead devtools: ``HttpExporter.flush`` with the circuit breaker, after the first failure (goal
  <= 1 ms); a dead Redis: ``SpoolExporter.flush``;
- previews: ``json_safe`` of two million integers and of a wide nested value (goal < 5 ms).

Run: ``.venv/bin/python -m bench.spool [--records N]``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.receiver import receiver_process
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.group import cursor_key
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client
from tests.receiver import free_port, sample_records

REDIS_URL = "redis://127.0.0.1:6379/9"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pct(values: list[float], q: float) -> float:
    return _pct(values, q)


def fmt_ms(values: list[float]) -> str:
    return _ms(values)


def _ms(values: list[float]) -> str:
    return f"p50 {_pct(values, 0.5) * 1e3:.3f} ms, p90 {_pct(values, 0.9) * 1e3:.3f} ms"


def spool_append(rounds: int = 5000) -> tuple[list[float], list[float]]:
    """(flush timings, export+flush timings) of one action's 8 records."""
    client = spool_client(REDIS_URL)
    key = f"bench:spool:{uuid.uuid4().hex}"
    exporter = SpoolExporter(client, key)
    records = sample_records(8, size=500)
    flushes: list[float] = []
    totals: list[float] = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            for record in records:  # as the recorder does: one export per record
                exporter.export((record,))
            exported = time.perf_counter()
            exporter.flush(1.0)
            ended = time.perf_counter()
            flushes.append(ended - exported)
            totals.append(ended - started)
    finally:
        client.delete(key)
    return flushes[100:], totals[100:]


def forwarder_throughput(count: int) -> tuple[float, dict[str, Any]]:
    """Records per second from a spooled backlog of ``count`` records to the receiver process."""
    client = spool_client(REDIS_URL, socket_timeout_s=5.0)
    key = f"bench:spool:{uuid.uuid4().hex}"
    exporter = SpoolExporter(client, key, max_entries=count)
    records = sample_records(count, size=500)
    for start in range(0, count, 8):
        exporter.export(records[start : start + 8])
        exporter.flush(1.0)
    try:
        with receiver_process() as (url, counts):
            forwarder = Forwarder(client, key, HttpTransport(url))
            started = time.perf_counter()
            drained = forwarder.drain(120.0)
            elapsed = time.perf_counter() - started
        counts["drained"] = drained
        counts["delivered"] = forwarder.stats.delivered
    finally:
        client.delete(key, cursor_key(key))
    return count / elapsed, counts


def _timed(call: Callable[[], Any], rounds: int) -> list[float]:
    out: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def dead_devtools_flush(rounds: int = 1000) -> list[float]:
    exporter = HttpExporter(HttpTransport(f"http://127.0.0.1:{free_port()}"), breaker=CircuitBreaker())
    record = sample_records(1)[0]
    exporter.export([record])
    exporter.flush(3.0)  # the first failure opens the breaker

    def one() -> None:
        exporter.export([record])
        exporter.flush(3.0)

    try:
        return _timed(one, rounds)
    finally:
        exporter.shutdown(0.1)


def dead_redis_flush(rounds: int = 1000) -> list[float]:
    exporter = SpoolExporter(spool_client(f"redis://127.0.0.1:{free_port()}/9"), "bench:down")
    records = sample_records(8, size=500)
    exporter.export(records)
    exporter.flush(1.0)

    def one() -> None:
        exporter.export(records)
        exporter.flush(1.0)

    return _timed(one, rounds)


def previews() -> dict[str, float]:
    integers = list(range(2_000_000))
    nested = [[list(range(200)) for _ in range(200)] for _ in range(10)]
    return {
        "2M ints": min(_timed(lambda: json_safe(integers), 20)),
        "10x200x200 nested": min(_timed(lambda: json_safe(nested), 20)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000, help="forwarder backlog size")
    args = parser.parse_args()
    flushes, totals = spool_append()
    print(f"spool append, flush of 8 records:         {_ms(flushes)}  (goal <= 0.150 ms p50)")
    print(f"spool append, 8 exports + flush:          {_ms(totals)}")
    rate, counts = forwarder_throughput(args.records)
    print(f"forwarder throughput:                     {rate:,.0f} records/s  (goal >= 20,000)  {counts}")
    print(f"dead devtools, export + flush (breaker):  {_ms(dead_devtools_flush())}  (goal <= 1 ms)")
    print(f"dead Redis, 8 exports + flush (breaker):  {_ms(dead_redis_flush())}")
    for name, seconds in previews().items():
        print(f"json_safe({name}):{' ' * (30 - len(name))}{seconds * 1e3:.3f} ms  (goal < 5 ms)")


if __name__ == "__main__":
    main()
