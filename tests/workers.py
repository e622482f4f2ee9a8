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


class Supervised:
    """A worker restarted whenever it exits, as a process supervisor (systemd, supervisord)
    would: kombu can kill a worker when Redis restarts under it."""

    def __init__(self, tmp_path: Path, **options: object) -> None:
        import threading

        self._tmp_path = tmp_path
        self._options = options
        self._stack: list[SubprocessWorker] = []
        self._stop = threading.Event()
        self.restarts = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def current(self) -> SubprocessWorker:
        return self._stack[-1]

    def _spawn(self) -> None:
        import contextlib

        stack = contextlib.ExitStack()
        directory = self._tmp_path / f"supervised-{len(self._stack)}"  # each run keeps its own log
        directory.mkdir(exist_ok=True)
        worker = stack.enter_context(subprocess_worker(directory, **self._options))  # type: ignore[arg-type]
        worker.stack = stack  # type: ignore[attr-defined]
        self._stack.append(worker)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if self.current.process.poll() is not None:
                self.restarts += 1
                try:
                    self._spawn()
                except RuntimeError:
                    continue  # Redis may still be down: try again

    def __enter__(self) -> Supervised:
        self._spawn()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for worker in self._stack:
            worker.stack.close()  # type: ignore[attr-defined]

    def logs(self) -> str:
        return "\n".join(w.log()[-2000:] for w in self._stack)
