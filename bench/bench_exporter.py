"""Exporter throughput, end to end, for one process.

Exports N realistic ~600-byte v5 records through ``HttpExporter`` (one ``export`` call per record, as
the runtime does), then flushes, against the test receiver (``tests.receiver``: a real HTTP server
that parses every body and answers per-record dispositions). By default the receiver runs in a
subprocess, so it does not share this process's GIL; ``--in-process`` runs it in a thread here.

    .venv/bin/python bench/bench_exporter.py [-n 50000] [--size 600] [--in-process]

Prints ``exporter throughput: <records/s> records/s (<N> records, <seconds> s)``. Goal: >= 20,000/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=600, help="bytes of compact JSON per record")
    parser.add_argument("--in-process", action="store_true", help="run the receiver in a thread here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from cruxcelery.telemetry.delivery import HttpExporter
    from cruxcelery.telemetry.transport import HttpTransport
    from tests.receiver import Receiver, sample_records

    records = sample_records(args.records, size=args.size)
    server: subprocess.Popen[str] | None = None
    receiver: Receiver | None = None
    if args.in_process:
        receiver = Receiver().start()
        url = receiver.url
    else:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.receiver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdin is not None
        url = server.stdout.readline().strip()

    exporter = HttpExporter(HttpTransport(url), max_queue_records=args.records)
    exporter.export(sample_records(1, tag="ffffffffffffffff"))  # warm up: thread, connection
    exporter.flush(5.0)

    started = time.perf_counter()
    for record in records:
        exporter.export([record])
    exported = time.perf_counter() - started
    delivered_during_export = exporter.source_health()["delivered"] - 1
    result = exporter.flush(60.0)
    elapsed = time.perf_counter() - started
    exporter.shutdown(1.0)

    if receiver is not None:
        received = len(receiver.records()) - 1
        requests = len(receiver.requests()) - 1
        receiver.stop()
    else:
        assert server is not None and server.stdin is not None and server.stdout is not None
        server.stdin.close()
        counts = json.loads(server.stdout.readline())
        server.wait(5)
        received, requests = counts["records"] - 1, counts["requests"] - 1

    print(f"exporter throughput: {result.delivered / elapsed:.0f} records/s ({args.records} records, {elapsed:.2f} s)")
    print(
        f"  flush {result.status}: delivered={result.delivered} rejected={result.rejected} "
        f"dropped={result.dropped} remaining={result.remaining}; receiver got {received} records "
        f"in {requests} requests; export() calls took {exported:.2f} s "
        f"({exported / args.records * 1e6:.1f} us each, {delivered_during_export} delivered meanwhile); "
        f"receiver "
        f"{'in-process' if args.in_process else 'in a subprocess'}"
    )
    return 0 if result.status == "drained" and received == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
