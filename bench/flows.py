"""Flow benchmarks, beside DBOS measured in the same run (``bench.dbos_peer``):

- step overhead: each step of fresh 10- and 200-step flows run in this process (``run_inline``),
  with the spool exporter attached as in a worker: the step's span, output artifact and versioned
  snapshot write to Redis (goal <= 0.3 ms p50, flat in flow length; DBOS: a ``@DBOS.step`` in a
  workflow, its checkpoint in PostgreSQL);
- signal -> completed through a warm worker (goal <= 5 ms p50; DBOS: ``DBOS.send`` -> the
  workflow's result);
- 3-step flows end to end with 2 workers: ``start()`` of N flows from this process until every
  one reads ``completed`` (goal >= 3x DBOS workflows/s, 2 processes)."""

from __future__ import annotations

import time

import redis

from bench import app as bench_app
from bench.stats import pct, summary
from bench.telemetry import attached
from cruxcelery.flows.store.keys import FlowKeys


def step_overhead(steps: int, total: int = 1000) -> list[float]:
    """Each step of fresh flows run in-process: its span, output artifact and versioned snapshot
    write to Redis."""
    bench_app.step_timings.clear()
    for _ in range(max(1, total // steps)):
        result = bench_app.many_steps.run_inline({"steps": steps})
        assert result is not None and result.status == "completed", result
    return list(bench_app.step_timings)


def _head_status(flow_id: str) -> str | None:
    head = bench_app.crux.flows.store.snapshots.head(flow_id)
    return head.status if head is not None else None


def _wait_status(flow_id: str, status: str, poll_s: float, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _head_status(flow_id) != status:
        if time.monotonic() > deadline:
            raise RuntimeError(f"flow {flow_id} did not reach {status}: {_head_status(flow_id)}")
        time.sleep(poll_s)


def signal_to_completed(rounds: int = 60) -> list[float]:
    """From ``signal()`` to the flow's status reading ``completed`` (one HMGET polled every
    0.2 ms), through a warm worker."""
    handle = bench_app.waiting
    latencies: list[float] = []
    for _ in range(rounds):
        flow_id = handle.start({})
        _wait_status(flow_id, "suspended", 0.001)
        started = time.perf_counter()
        handle.signal(flow_id, "go", {"ok": True})
        _wait_status(flow_id, "completed", 0.0002)
        latencies.append(time.perf_counter() - started)
    return latencies[5:]  # the first rounds warm the worker's connections


def end_to_end(count: int) -> tuple[float, float]:
    """``(flows/s, seconds)``: ``start()`` of ``count`` 3-step flows, until all are completed
    (their statuses read in one pipeline every 50 ms). The workers must be running."""
    store_keys = FlowKeys(bench_app.crux.settings.key_prefix)
    client = redis.Redis.from_url(bench_app.REDIS)
    for flow_id in [bench_app.three_steps.start({}) for _ in range(20)]:  # warm both workers
        _wait_status(flow_id, "completed", 0.01)
    started = time.perf_counter()
    ids = [bench_app.three_steps.start({}) for _ in range(count)]
    remaining = ids
    deadline = time.monotonic() + 600
    while remaining:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(remaining)} of {count} 3-step flows did not complete")
        pipe = client.pipeline(transaction=False)
        for flow_id in remaining:
            pipe.hget(store_keys.flow(flow_id), "status")
        remaining = [fid for fid, status in zip(remaining, pipe.execute(), strict=True) if status != b"completed"]
        if remaining:
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed, elapsed


def run(url: str, steps_total: int = 1000, signal_rounds: int = 60) -> dict[str, float]:
    """Step overhead (in this process) and signal -> completed (the running worker)."""
    figures: dict[str, float] = {}
    with attached("spool", url):
        for steps in (10, 200):
            timings = step_overhead(steps, max(steps_total, steps))
            figures[f"step_{steps}_p50_ms"] = pct(timings, 50) * 1000
            print(f"flow step overhead ({steps}-step flows): {summary(timings)}  [goal <= 0.3 ms p50]")
            if steps == 200:  # the last steps write the largest snapshots
                tail = [t for i, t in enumerate(timings) if i % steps >= steps - 20]
                figures["step_200_tail_p50_ms"] = pct(tail, 50) * 1000
                print(f"  steps 181-200 of 200-step flows: {summary(tail)}")
    signals = signal_to_completed(signal_rounds)
    figures["signal_p50_ms"] = pct(signals, 50) * 1000
    print(f"signal -> completed (warm worker): {summary(signals)}  [goal <= 5 ms p50]")
    floor = celery_round_trip(signal_rounds)
    figures["celery_round_trip_p50_ms"] = pct(floor, 50) * 1000
    print(f"  the transport's floor: a plain acks_late task's delay() -> get() on the same worker: {summary(floor)}")
    return figures


def celery_round_trip(rounds: int) -> list[float]:
    """What Celery alone costs from publish to a stored result through the same worker."""
    out = []
    for index in range(rounds):
        started = time.perf_counter()
        bench_app.plain_late.delay(index).get(timeout=30)
        out.append(time.perf_counter() - started)
    return out[5:]
