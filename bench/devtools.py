"""``python -m bench.devtools``: the devtools server under load (a benchmark, not a timed test).

- ingest: 100,000 records (2,000 runs of 50 records) POSTed in batches of 50 (the exporter's
  request size) by 4 client threads to ``cruxcelery dev`` running in a subprocess with a SQLite
  file -> records/s (goal >= 10,000/s);
- run detail: ``GET /api/runs/{id}`` of a run of 5,000 spans (``span:start``, ``span:end`` and an
  event each: 15,002 records) -> median and p95 latency (goal <= 150 ms), of the unchanged run
  (the server keeps a reconciled run until a record arrives or its next recheck time) and with a
  new record of the run before each read (what a live view of a running run costs).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cruxcelery.telemetry import ids

BATCH = 50
CLIENTS = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def devtools_process(db: Path) -> Iterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cruxcelery.cli", "dev", "--port", str(port), "--db", str(db)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("devtools did not start") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(15)


class _Run:
    def __init__(self) -> None:
        self.run_id, self.trace_id, self.segment = ids.run_id(), ids.trace_id(), ids.segment_id()
        self.seq = 0

    def record(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"schemaVersion": 5, "recordId": ids.record_id(), "type": type_, "operationId": self.run_id,
                "runId": self.run_id, "segmentId": self.segment, "segmentSeq": self.seq, "traceId": self.trace_id,
                **fields}


def run_records(spans: int, now: float) -> list[dict[str, Any]]:
    """A run of ``spans`` child spans under one root: start, end and one event per span."""
    run = _Run()
    at = ids.iso_ms(now)
    root = ids.span_id()
    out = [run.record("run:start", name="bench run", rootPrimitive="agent.run", startedAt=at, status="running"),
           run.record("span:start", spanId=root, family="agent", primitive="agent.run", name="bench run",
                      startedAt=at, status="running", attributes={})]
    for i in range(spans):
        span_id = ids.span_id()
        out.append(run.record("span:start", spanId=span_id, parentSpanId=root, family="tool", primitive="tool.call",
                              name=f"tool {i}", startedAt=at, status="running", attributes={"i": i}))
        out.append(run.record("span:event", spanId=span_id, eventId=ids.event_id(), name="tool.result", timestamp=at,
                              attributes={"ok": True}))
        out.append(run.record("span:end", spanId=span_id, endedAt=at, durationMs=1.0, status="ok"))
    return out


def _bodies(records: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps({"schemaVersion": 5, "records": records[i:i + BATCH]}, separators=(",", ":")).encode()
            for i in range(0, len(records), BATCH)]


def bench_ingest(url: str, total: int = 100_000) -> tuple[float, float]:
    """Records/s, and the CPU seconds the clients used while sending."""
    now = time.time()
    records = [r for _ in range(total // 50) for r in run_records(16, now)[:50]]
    bodies = _bodies(records)
    rejected = [0]
    lock = threading.Lock()

    def send(part: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for body in part:
                response = client.post("/api/observability/records", content=body,
                                       headers={"Content-Type": "application/json"})
                bad = sum(d["outcome"] != "accepted" for d in response.json()["dispositions"])
                with lock:
                    rejected[0] += bad

    threads = [threading.Thread(target=send, args=(bodies[i::CLIENTS],)) for i in range(CLIENTS)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert rejected[0] == 0, f"{rejected[0]} records rejected"
    return len(records) / elapsed, cpu


def _read(client: httpx.Client, run_id: str, spans: int) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(f"/api/runs/{run_id}")
    elapsed = (time.perf_counter() - started) * 1000
    assert len(response.json()["spans"]) == spans + 1
    return elapsed, len(response.content)


def _percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[max(0, int(len(timings) * 0.95) - 1)]


def bench_detail(url: str, spans: int = 5000, reads: int = 20) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Median and p95 of reads of an unchanged run (``repeat``), then of reads that each follow a
    new record of the run (``live``: the run is rebuilt and reconciled afresh), and the body size."""
    records = run_records(spans, time.time())
    run = _Run()
    run.run_id, run.trace_id, run.segment = records[0]["runId"], records[0]["traceId"], ids.segment_id()
    root = records[1]["spanId"]
    with httpx.Client(base_url=url, timeout=60) as client:
        for body in _bodies(records):
            client.post("/api/observability/records", content=body, headers={"content-type": "application/json"})
        run_id = records[0]["runId"]
        repeat, live = [], []
        size = 0
        for _ in range(reads):
            elapsed, size = _read(client, run_id, spans)
            repeat.append(elapsed)
        for _ in range(reads):
            event = run.record("span:event", spanId=root, eventId=ids.event_id(), name="progress",
                               timestamp=ids.iso_ms(time.time()), attributes={})
            client.post("/api/observability/records", content=_bodies([event])[0],
                        headers={"content-type": "application/json"})
            live.append(_read(client, run_id, spans)[0])
    return _percentiles(repeat), _percentiles(live), size


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="crux-devtools-bench-") as tmp:
        with devtools_process(Path(tmp) / "ingest.sqlite3") as (url, pid):
            cpu_before = cpu_seconds(pid)
            rate, client_cpu = bench_ingest(url)
            cpu_after = cpu_seconds(pid)
            print(f"ingest: 100,000 records in batches of {BATCH}, {CLIENTS} clients: {rate:,.0f} records/s"
                  f" (goal >= 10,000/s)")
            if cpu_before is not None and cpu_after is not None:
                print(f"  server CPU: {cpu_after - cpu_before:.1f} s ({100_000 / (cpu_after - cpu_before):,.0f}"
                      f" records per CPU-second); the clients used {client_cpu:.1f} s"
                      f" of the same {os.cpu_count()} cores")
        with devtools_process(Path(tmp) / "detail.sqlite3") as (url, _pid):
            (median, p95), (live_median, live_p95), size = bench_detail(url)
            print(f"run detail of a 5,000-span run (15,002 records, {size / 1e6:.1f} MB of JSON), goal <= 150 ms:")
            print(f"  unchanged run: median {median:.0f} ms, p95 {p95:.0f} ms")
            print(f"  a new record before each read (rebuilt): median {live_median:.0f} ms, p95 {live_p95:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
