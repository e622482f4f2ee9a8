"""A JSON-lines file sink: every record one line, appended at once (``CRUX_RECORDS_FILE``).

Each record is written with one ``write`` on an ``O_APPEND`` descriptor, so several worker
processes may share the file. The descriptor is reopened after ``fork``."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence

from cruxcelery.telemetry.exporter import FlushResult, JsonRecord

log = logging.getLogger("cruxcelery.telemetry")


class JsonlFileSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1
        self.written = 0
        self.failed = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def export(self, records: Sequence[JsonRecord]) -> None:
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")
        try:
            with self._lock:
                os.write(self._descriptor(), data)
                self.written += len(records)
        except OSError:
            self.failed += len(records)
            log.warning("cruxcelery: cannot append records to %s", self.path, exc_info=True)

    def flush(self, timeout_s: float) -> FlushResult:
        return FlushResult(status="drained" if not self.failed else "failed", delivered=self.written)

    def shutdown(self, timeout_s: float) -> FlushResult:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
        return self.flush(timeout_s)
