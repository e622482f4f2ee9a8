"""The devtools stand-in for benchmarks: the test receiver (a real HTTP server that parses every
body and answers per-record dispositions) in its own process, so it does not share our GIL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def receiver_process() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields ``(url, counts)``; ``counts`` is filled with what it received when the block ends."""
    server = subprocess.Popen([sys.executable, "-m", "tests.receiver"], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    counts: dict[str, Any] = {}
    try:
        yield server.stdout.readline().strip(), counts
    finally:
        server.stdin.close()
        counts.update(json.loads(server.stdout.readline() or "{}"))
        server.wait(5)
