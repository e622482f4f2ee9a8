"""A real Flower process for tests (``celery -A app flower`` on a free loopback port, its API
open), and a JSON reader for its API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.workers import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


@contextmanager
def flower_server(tmp_path: Path, app: str, queue: str) -> Iterator[str]:
    """Start Flower for ``app``; yield its base URL once ``/api/tasks`` answers."""
    port = free_port()
    log_path = tmp_path / "flower.log"
    env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true", "PYTHONPATH": str(ROOT),
           "CRUX_TEST_QUEUE": queue}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "flower", f"--port={port}",
             "--address=127.0.0.1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get_json(f"{base}/api/tasks")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"flower did not start:\n{text}") from None
                time.sleep(0.2)
        yield base
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
