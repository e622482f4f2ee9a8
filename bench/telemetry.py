"""What telemetry costs an action: the healthy flush at its end (goal <= 2 ms p50), and action
throughput next to a plain Celery task on the same worker (goal >= 0.95)."""

from __future__ import annotations

import time
from typing import Any

from bench import app as bench_app
from bench.stats import pct, summary
from cruxcelery import CruxSettings
from cruxcelery.telemetry.delivery import HttpExporter


def flush_latency(url: str, rounds: int = 300) -> list[float]:
    """The flush in an action's ``finally``, against a healthy devtools: run the action in this
    process (``apply()``) and time its flush."""
    crux = bench_app.crux
    exporter = HttpExporter.from_settings(CruxSettings(devtools_url=url))
    assert exporter is not None
    crux.add_exporter(exporter)
    timings: list[float] = []
    original = crux.flush

    def timed_flush(timeout_s: float | None = None) -> Any:
        started = time.perf_counter()
        result = original(timeout_s)
        timings.append(time.perf_counter() - started)
        return result

    crux.flush = timed_flush  # type: ignore[method-assign]
    try:
        for index in range(rounds):
            bench_app.action.apply(args=({"n": index},)).get()
    finally:
        crux.flush = original  # type: ignore[method-assign]
        crux.remove_exporter(exporter)
        exporter.shutdown(1.0)
    return timings[20:]


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


def run(url: str) -> dict[str, float]:
    flushes = flush_latency(url)
    print(f"healthy flush added to an action: {summary(flushes)}  [goal <= 2 ms p50]")
    rates = throughput({
        "plain": lambda i: bench_app.plain.delay(i),
        "plain_late": lambda i: bench_app.plain_late.delay(i),
        "action": lambda i: bench_app.action.delay({"n": i}),
    }, tasks=400)
    print(f"no-op tasks on one worker: plain Celery {rates['plain']:.0f}/s, plain with acks_late "
          f"{rates['plain_late']:.0f}/s, crux action with telemetry to devtools {rates['action']:.0f}/s; "
          f"ratio {rates['action'] / rates['plain']:.3f} (vs acks_late: "
          f"{rates['action'] / rates['plain_late']:.3f})  [goal >= 0.95]")
    work = throughput({"plain": lambda i: bench_app.plain_work.delay(i),
                       "action": lambda i: bench_app.action_work.delay({"n": i})}, tasks=60, rounds=2)
    print(f"{bench_app.WORK_S * 1000:.0f} ms tasks on one worker: plain Celery {work['plain']:.1f}/s, "
          f"crux action {work['action']:.1f}/s; ratio {work['action'] / work['plain']:.3f}")
    return {"flush_p50_ms": pct(flushes, 50) * 1000, "ratio_noop": rates["action"] / rates["plain"],
            "ratio_work": work["action"] / work["plain"]}
