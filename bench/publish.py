"""``run_action`` publish cost: inside one crux action run in this process (``apply()``, the spool
exporter attached as in a worker), ``ctx.crux.run_action`` of a crux action (boundary span and
event, bounded flush to the spool, envelope) against ``apply_async`` of the same task, alternately,
to a queue nobody consumes (deleted afterwards). Goal: ratio of p50s <= 1.10."""

from __future__ import annotations

import os

from bench import app as bench_app
from bench.stats import pct, summary
from bench.telemetry import attached


def run(url: str, rounds: int = 2000) -> dict[str, float]:
    queue = f"crux-bench-publish-{os.getpid()}"
    try:
        with attached("spool", url):
            result = bench_app.publisher.apply(args=({"rounds": rounds, "queue": queue},)).get()
    finally:
        with bench_app.app.connection_for_write() as conn:
            conn.default_channel.client.delete(queue)
    skip = min(100, rounds // 10)  # connections and caches warm up first
    crux, plain = result["run_action"][skip:], result["apply_async"][skip:]
    print(f"run_action publish: {summary(crux)}")
    print(f"apply_async publish (same task, same action): {summary(plain)}")
    ratio = pct(crux, 50) / pct(plain, 50)
    print(f"run_action / apply_async, p50: {ratio:.3f}  [goal <= 1.10]")
    return {"run_action_p50_ms": pct(crux, 50) * 1000, "apply_async_p50_ms": pct(plain, 50) * 1000,
            "ratio": ratio}
