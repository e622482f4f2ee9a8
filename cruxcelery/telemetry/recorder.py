"""The recorder: numbers nothing, knows no runs; it takes finished record dicts, hands them to
every exporter and flushes them within a bound. Never raises into the caller."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from cruxcelery.telemetry.exporter import FlushResult, RecordExporter

log = logging.getLogger("cruxcelery.telemetry")


class Recorder:
    def __init__(self, exporters: list[RecordExporter] | None = None, *, enabled: bool = True) -> None:
        self._exporters: list[RecordExporter] = list(exporters or [])
        self._lock = threading.Lock()
        self.enabled = enabled
        self.emitted = 0
        self.last_flush: FlushResult | None = None

    @property
    def exporters(self) -> list[RecordExporter]:
        return list(self._exporters)

    def add_exporter(self, exporter: RecordExporter) -> None:
        with self._lock:
            self._exporters.append(exporter)

    def remove_exporter(self, exporter: RecordExporter) -> None:
        with self._lock:
            if exporter in self._exporters:
                self._exporters.remove(exporter)

    def emit(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        self.emitted += 1
        for exporter in self._exporters:
            try:
                exporter.export((record,))
            except Exception:  # an exporter must never hurt user code
                log.warning("cruxcelery exporter %r failed to accept a record", exporter, exc_info=True)

    def flush(self, timeout_s: float) -> FlushResult:
        """Flush every exporter within one shared deadline."""
        exporters = self._exporters
        if len(exporters) == 1:  # the usual case: no merging (FlushResult is a pydantic model)
            try:
                result = exporters[0].flush(max(timeout_s, 0.0))
            except Exception:
                log.warning("cruxcelery exporter %r failed to flush", exporters[0], exc_info=True)
                result = FlushResult(status="failed")
            self.last_flush = result
            return result
        deadline = time.monotonic() + max(timeout_s, 0.0)
        result = FlushResult()
        for exporter in list(exporters):
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                result = result.merge(exporter.flush(remaining))
            except Exception:
                log.warning("cruxcelery exporter %r failed to flush", exporter, exc_info=True)
                result = result.merge(FlushResult(status="failed"))
        self.last_flush = result
        return result

    def shutdown(self, timeout_s: float) -> FlushResult:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        result = FlushResult()
        for exporter in list(self._exporters):
            try:
                result = result.merge(exporter.shutdown(max(deadline - time.monotonic(), 0.0)))
            except Exception:
                log.warning("cruxcelery exporter %r failed to shut down", exporter, exc_info=True)
        return result
