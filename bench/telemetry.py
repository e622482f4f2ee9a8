"""What telemetry costs an action, per delivery path (the spool in Redis, or HTTP from an
in-process queue): the flush at the end of an action against a healthy devtools (spool goal
<= 0.15 ms p50), and action throughput next to plain Celery tasks with ``acks_late`` on the same
worker, and next to the same plain task in a worker instrumented with
``opentelemetry-instrumentation-celery`` (``OTEL_QUEUE``; no-op goal >= 0.90, 20 ms goal >= 0.98)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import app as bench_app
from bench.stats import pct, summary
from cruxcelery import CruxSettings
from cruxcelery.delivery import extension as telemetry_setup
from cruxcelery.telemetry.exporter import RecordExporter

SPOOLED = ("spool", "direct")  # direct: the spool, read by devtools itself (workers' forwarders stand by)


def _exporter(path: str, url: str) -> RecordExporter:
    settings = CruxSettings(devtools_url=url, key_prefix="crux-bench-flush")
    if path in SPOOLED:
        return telemetry_setup.spool_exporter(settings, bench_app.REDIS)
    exporter = telemetry_setup.http_exporter(settings)
    assert exporter is not None
    return exporter


OTEL_QUEUE = f"{bench_app.QUEUE}-otel"  # consumed by the worker started with CRUX_BENCH_OTEL=1


@contextmanager
def attached(path: str, url: str) -> Iterator[RecordExporter]:
    """This process's Crux exports through the path's exporter (as a worker's does) meanwhile."""
    crux = bench_app.crux
    exporter = _exporter(path, url)
    crux.add_exporter(exporter)
    try:
        yield exporter
    finally:
        crux.remove_exporter(exporter)
        exporter.shutdown(1.0)
        if path in SPOOLED:
            client = getattr(exporter, "client", None)
            if client is not None:
                client.delete("crux-bench-flush:telemetry")


def flush_latency(path: str, url: str, rounds: int = 500) -> list[float]:
    """The flush in an action's ``finally``: run the action in this process (``apply()``) with the
    path's exporter and time its flush."""
    crux = bench_app.crux
    timings: list[float] = []
    original = crux.flush

    def timed_flush(timeout_s: float | None = None) -> Any:
        started = time.perf_counter()
        result = original(timeout_s)
        timings.append(time.perf_counter() - started)
        return result

    with attached(path, url):
        crux.flush = timed_flush  # type: ignore[method-assign]
        try:
            for index in range(rounds):
                bench_app.action.apply(args=({"n": index},)).get()
        finally:
            crux.flush = original  # type: ignore[method-assign]
    return timings[min(50, rounds // 10):]


def _drain(results: list[Any]) -> None:
    for result in results:
        result.get(timeout=300)


def throughput(senders: dict[str, Any], tasks: int, rounds: int = 3) -> dict[str, float]:
    """Tasks/s through the worker for each sender, interleaved round by round; the best round."""
    best = dict.fromkeys(senders, 0.0)
    for _ in range(rounds):
        for kind, send in senders.items():
            started = time.perf_counter()
            _drain([send(i) for i in range(tasks)])
            best[kind] = max(best[kind], tasks / (time.perf_counter() - started))
    return best


def run(path: str, url: str, tasks: int = 400, work_tasks: int = 60, flushes: int = 500) -> dict[str, float]:
    """``path``: ``spool`` or ``http`` (the worker must run with the same ``CRUX_SPOOL``); the
    OpenTelemetry worker consumes ``OTEL_QUEUE`` meanwhile."""
    timings = flush_latency(path, url, flushes)
    print(f"[{path}] flush added to an action (healthy devtools): {summary(timings)}"
          f"{'  [goal <= 0.15 ms p50]' if path == 'spool' else ''}")
    rates = throughput({
        "plain": lambda i: bench_app.plain.delay(i),
        "plain_late": lambda i: bench_app.plain_late.delay(i),
        "otel": lambda i: bench_app.plain_late.apply_async((i,), queue=OTEL_QUEUE),
        "action": lambda i: bench_app.action.delay({"n": i}),
    }, tasks=tasks)
    print(f"[{path}] no-op tasks on one worker: plain Celery {rates['plain']:.0f}/s, plain with acks_late "
          f"{rates['plain_late']:.0f}/s, acks_late with OpenTelemetry instrumentation {rates['otel']:.0f}/s, "
          f"crux action {rates['action']:.0f}/s; ratio vs acks_late {rates['action'] / rates['plain_late']:.3f}, "
          f"vs OpenTelemetry {rates['action'] / rates['otel']:.3f}  [goal >= 0.90] (vs plain: "
          f"{rates['action'] / rates['plain']:.3f})")
    work = throughput({"plain_late": lambda i: bench_app.plain_work_late.delay(i),
                       "otel": lambda i: bench_app.plain_work_late.apply_async((i,), queue=OTEL_QUEUE),
                       "action": lambda i: bench_app.action_work.delay({"n": i})}, tasks=work_tasks, rounds=2)
    print(f"[{path}] {bench_app.WORK_S * 1000:.0f} ms tasks on one worker: plain Celery with acks_late "
          f"{work['plain_late']:.1f}/s, with OpenTelemetry {work['otel']:.1f}/s, crux action {work['action']:.1f}/s; "
          f"ratio vs acks_late {work['action'] / work['plain_late']:.3f}, vs OpenTelemetry "
          f"{work['action'] / work['otel']:.3f}  [goal >= 0.98]")
    return {"flush_p50_ms": pct(timings, 50) * 1000,
            "noop_crux": rates["action"], "noop_plain_late": rates["plain_late"], "noop_otel": rates["otel"],
            "noop_plain": rates["plain"],
            "work_crux": work["action"], "work_plain_late": work["plain_late"], "work_otel": work["otel"],
            "ratio_noop": rates["action"] / rates["plain_late"], "ratio_work": work["action"] / work["plain_late"]}
