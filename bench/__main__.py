"""``python -m bench`` (``make bench``): every benchmark in one run. A real receiver stands in for
devtools, a real worker runs in a subprocess, plain Celery is measured beside cruxcelery."""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
from pathlib import Path


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    from bench import app as bench_app
    from bench import exporter, flows, spool, telemetry
    from bench.receiver import receiver_process
    from cruxcelery.demo import worker

    pool = os.environ.get("CRUX_BENCH_POOL", "prefork")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"worker: celery {pool} pool, concurrency 1, in a subprocess; devtools: test receiver subprocess")
    with bench_app.app.connection_for_write() as conn:
        conn.default_channel.client.delete(bench_app.QUEUE)
    figures: dict[str, dict[str, float]] = {"spool": {}, "http": {}}
    with receiver_process() as (url, _counts), tempfile.TemporaryDirectory(prefix="crux-bench-") as tmp:
        figures["http"]["delivery_rps"] = exporter.run(url)
        appends, _ = spool.spool_append()
        figures["spool"]["append_p50_ms"] = spool.pct(appends, 0.5) * 1000
        print(f"spool append (XADD of one action's 8 records): {spool.fmt_ms(appends)}  [goal <= 0.15 ms p50]")
        rate, counts = spool.forwarder_throughput(50_000)
        figures["spool"]["delivery_rps"] = rate
        print(f"forwarder throughput (spool -> devtools): {rate:,.0f} records/s  [goal >= 20,000]  {counts}")
        for path in ("spool", "http"):
            env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_DEVTOOLS_URL": url,
                   "CRUX_SPOOL": "on" if path == "spool" else "off"}
            with worker("bench.app", env, Path(tmp) / f"worker-{path}.log", options=("-P", pool, "-c", "1"),
                        name=f"bench-{path}"):
                figures[path].update(telemetry.run(path, url))
                if path == "spool":
                    flows.run()
    _summary(figures)
    return 0


def _summary(figures: dict[str, dict[str, float]]) -> None:
    spool, http = figures["spool"], figures["http"]
    print("\nsummary (crux vs plain Celery with acks_late, same worker)        spool      http-only   goal")
    print(f"  no-op action throughput ratio                                 {spool['ratio_noop']:>8.3f}  "
          f"{http['ratio_noop']:>10.3f}   >= 0.90")
    print(f"  20 ms action throughput ratio                                 {spool['ratio_work']:>8.3f}  "
          f"{http['ratio_work']:>10.3f}   >= 0.98")
    print(f"  flush added to an action, p50 (ms)                            {spool['flush_p50_ms']:>8.3f}  "
          f"{http['flush_p50_ms']:>10.3f}   <= 0.15 (spool)")
    print(f"  spool append of 8 records, p50 (ms)                           {spool['append_p50_ms']:>8.3f}  "
          f"{'-':>10}   <= 0.15")
    print(f"  delivery to devtools (records/s: forwarder | HttpExporter)    {spool['delivery_rps']:>8,.0f}  "
          f"{http['delivery_rps']:>10,.0f}   >= 20,000")


if __name__ == "__main__":
    sys.exit(main())
