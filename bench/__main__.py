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
    from bench import exporter, flows, telemetry
    from bench.receiver import receiver_process
    from cruxcelery.demo import worker

    pool = os.environ.get("CRUX_BENCH_POOL", "prefork")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"worker: celery {pool} pool, concurrency 1, in a subprocess; devtools: test receiver subprocess")
    with bench_app.app.connection_for_write() as conn:
        conn.default_channel.client.delete(bench_app.QUEUE)
    with receiver_process() as (url, _counts), tempfile.TemporaryDirectory(prefix="crux-bench-") as tmp:
        exporter.run(url)
        env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_DEVTOOLS_URL": url}
        with worker("bench.app", env, Path(tmp) / "worker.log", options=("-P", pool, "-c", "1"), name="bench"):
            telemetry.run(url)
            flows.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
