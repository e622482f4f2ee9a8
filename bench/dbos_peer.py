"""The DBOS peer, measured in the same run as cruxcelery: DBOS (``dbos`` on PyPI, the ``bench``
extra) with its system database on PostgreSQL (``CRUX_BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432``, database ``crux_bench_dbos``, recreated by each run).

DBOS is a process-wide singleton, so it runs in processes of its own:

- ``python -m bench.dbos_peer figures``: step overhead (each ``@DBOS.step`` call in 10- and
  200-step workflows, timed in the workflow as the crux bench times ``scope.step``) and
  ``DBOS.send`` -> the workflow's result (a workflow waiting in ``DBOS.recv``, started with
  ``DBOS.start_workflow``); prints one JSON line;
- ``python -m bench.dbos_peer worker --flows N``: after ``go`` on stdin, N 3-step workflows (three
  no-op steps), run by ``--threads`` threads calling the workflow; prints one JSON line with the
  wall-clock start and end. The bench runs two at once (the "2 workers" row).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

PG = os.environ.get("CRUX_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "crux_bench_dbos"


# -- PostgreSQL (used by the bench's own process) -------------------------------------------------

def _pg_ready() -> bool:
    import psycopg

    try:
        with psycopg.connect(f"{PG}/postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_postgres() -> str:
    """Start the local cluster if PostgreSQL does not answer, drop and recreate the bench's
    database (a fresh system database each run); returns the server's version."""
    import psycopg

    if not _pg_ready() and shutil.which("pg_ctlcluster") and os.path.isdir("/etc/postgresql"):
        for version in sorted(os.listdir("/etc/postgresql")):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        for _ in range(100):
            if _pg_ready():
                break
            time.sleep(0.1)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def run(mode: str, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """One ``figures`` process; its JSON."""
    done = subprocess.run([sys.executable, "-m", "bench.dbos_peer", mode, *args], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.dbos_peer {mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def throughput(flows: int, processes: int = 2, threads: int = 16) -> tuple[float, float]:
    """``(workflows/s, seconds)`` of ``processes`` DBOS processes running ``flows`` 3-step
    workflows between them, from the first start to the last end."""
    procs = [subprocess.Popen([sys.executable, "-m", "bench.dbos_peer", "worker", "--flows", str(flows // processes),
                               "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(processes)]
    try:
        for proc in procs:
            _line(proc, "ready")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(_line(proc, "{")) for proc in procs]
        for proc in procs:
            proc.wait(60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return sum(r["flows"] for r in results) / elapsed, elapsed


def _line(proc: subprocess.Popen[str], prefix: str) -> str:
    """The next line of the process's output starting with ``prefix`` (DBOS may print others)."""
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a DBOS worker exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


# -- inside a DBOS process ------------------------------------------------------------------------

def _launch() -> Any:
    from dbos import DBOS

    DBOS(config={"name": "crux-bench", "system_database_url": f"{PG}/{DATABASE}", "log_level": "WARNING",
                 "executor_id": f"crux-bench-{os.getpid()}"})
    return DBOS


def _figures(options: argparse.Namespace) -> dict[str, Any]:
    DBOS = _launch()
    timings: list[float] = []

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def steps(n: int) -> int:
        for i in range(n):
            started = time.perf_counter()
            noop(i)
            timings.append(time.perf_counter() - started)
        return n

    @DBOS.workflow()
    def waiting() -> bool:
        return bool(DBOS.recv("go", timeout_seconds=60)["ok"])

    DBOS.launch()
    out: dict[str, Any] = {}
    try:
        steps(5)  # warm up: connections, prepared statements
        for n in (10, 200):
            timings.clear()
            for _ in range(max(1, options.total // n)):
                steps(n)
            out[f"step_{n}"] = list(timings)
        latencies = []
        for _ in range(options.signals):
            handle = DBOS.start_workflow(waiting)
            time.sleep(0.02)  # the workflow is waiting in recv, as the crux flow is suspended
            started = time.perf_counter()
            DBOS.send(handle.get_workflow_id(), {"ok": True}, "go")
            assert handle.get_result() is True
            latencies.append(time.perf_counter() - started)
        out["send"] = latencies[5:]
    finally:
        DBOS.destroy()
    return out


def _worker(options: argparse.Namespace) -> None:
    DBOS = _launch()

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def three_steps() -> int:
        return sum(noop(i) for i in range(3))

    DBOS.launch()
    try:
        for _ in range(10):
            three_steps()  # warm up
        print("ready", flush=True)
        sys.stdin.readline()
        left = [options.flows]
        lock = threading.Lock()

        def loop() -> None:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                assert three_steps() == 3

        threads = [threading.Thread(target=loop) for _ in range(options.threads)]
        started = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ended = time.time()
        print(json.dumps({"flows": options.flows, "started": started, "ended": ended}), flush=True)
    finally:
        DBOS.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    figures = sub.add_parser("figures")
    figures.add_argument("--total", type=int, default=1000, help="steps timed per flow length")
    figures.add_argument("--signals", type=int, default=60)
    worker = sub.add_parser("worker")
    worker.add_argument("--flows", type=int, required=True)
    worker.add_argument("--threads", type=int, default=16)
    options = parser.parse_args()
    if options.mode == "figures":
        print(json.dumps(_figures(options)), flush=True)
    else:
        _worker(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
