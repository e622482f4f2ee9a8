"""``python -m bench``: every benchmark in one run, against a real worker subprocess."""

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
    from bench import flows
    from cruxcelery.demo import worker

    pool = os.environ.get("CRUX_BENCH_POOL", "prefork")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"worker: celery {pool} pool, concurrency 1, in a subprocess")
    with bench_app.app.connection_for_write() as conn:
        conn.default_channel.client.delete(bench_app.QUEUE)
    with tempfile.TemporaryDirectory(prefix="crux-bench-") as tmp, worker(
        "bench.app", {"CRUX_BENCH_QUEUE": bench_app.QUEUE}, Path(tmp) / "worker.log",
        options=("-P", pool, "-c", "1", "-Q", bench_app.QUEUE), name="bench",
    ):
        flows.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
