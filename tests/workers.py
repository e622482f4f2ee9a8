"""Real subprocess Celery workers for tests that need a prefork pool, signals or a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SubprocessWorker:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, queue: str) -> None:
        self.process = process
        self.log_path = log_path
        self.queue = queue

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def warm_shutdown(self, timeout_s: float = 30.0) -> int:
        """SIGTERM: finish running tasks, run shutdown hooks, exit."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextmanager
def subprocess_worker(
    tmp_path: Path, *, app: str = "tests.app", queue: str | None = None, concurrency: int = 2,
    extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None, ready_timeout_s: float = 30.0,
) -> Iterator[SubprocessWorker]:
    """Start ``celery -A app worker -P prefork`` consuming its own queue; wait until ready."""
    queue = queue or f"crux-sub-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / f"worker-{queue}.log"
    child_env = {**os.environ, "CRUX_TEST_QUEUE": queue, "PYTHONPATH": str(ROOT), **(env or {})}
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker", "-P", "prefork", "-c", str(concurrency),
        "-Q", queue, "-n", f"{queue}@%h", "-l", "INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat", *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    worker = SubprocessWorker(process, log_path, queue)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while " ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{worker.log()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        if process.poll() is None:
            worker.kill()
