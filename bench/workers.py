"""Celery workers for the bench: ``celery -A bench.app worker`` subprocesses in sessions of their
own, so a whole worker (its main process and every pool child) can be killed with one SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bench.receiver import ROOT


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log_file: Path) -> None:
        self.process = process
        self.log_file = log_file

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (main process and pool children), as an OOM
        killer or a lost machine would, and reap the main process."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        _wait_group_gone(self.process.pid)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM); SIGKILL of its group if it does not exit within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        _wait_group_gone(self.process.pid, kill=True)


def _wait_group_gone(pgid: int, kill: bool = False, timeout_s: float = 10.0) -> None:
    """Pool children of a worker whose main process exited may linger a moment: wait for them
    (and SIGKILL them with ``kill``), so the next measurement does not share the CPU with them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL if kill else 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def start(env: dict[str, str], log_file: Path, *, concurrency: int = 1, pool: str = "prefork",
          name: str = "bench", queues: str | None = None, timeout_s: float = 60.0) -> Worker:
    command = [sys.executable, "-m", "celery", "-A", "bench.app", "worker", "-P", pool, "-c", str(concurrency),
               "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"]
    if queues:
        command += ["-Q", queues]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=ROOT, start_new_session=True)
    worker = Worker(process, log_file)
    deadline = time.monotonic() + timeout_s
    while " ready." not in log_file.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"worker {name} did not start:\n" + log_file.read_text(errors="replace")[-3000:])
        time.sleep(0.05)
    return worker


@contextmanager
def running(env: dict[str, str], log_file: Path, **options: object) -> Iterator[Worker]:
    worker = start(env, log_file, **options)  # type: ignore[arg-type]
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def devtools_reading_spool(enabled: bool, tmp: Path) -> Iterator[None]:
    """``cruxcelery dev --redis`` on the bench's Redis, reading the spool itself, while the block
    runs (nothing when not ``enabled``): the bench workers' forwarders stand by meanwhile."""
    if not enabled:
        yield
        return
    import socket

    import redis

    from bench import app as bench_app
    from cruxcelery.telemetry.spool.stream import standby_key

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    key = standby_key("crux-bench:telemetry")
    command = [sys.executable, "-c", "import sys; from cruxcelery.cli.main import main; sys.exit(main())", "dev",
               "--redis", bench_app.REDIS, "--db", ":memory:", "--port", str(port)]
    with open(tmp / "devtools.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "CRUX_KEY_PREFIX": "crux-bench"},
                                   stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(bench_app.REDIS)
    try:
        deadline = time.monotonic() + 30
        while not client.exists(key):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("devtools did not start reading the spool:\n"
                                   + (tmp / "devtools.log").read_text()[-2000:])
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        client.delete(key)
