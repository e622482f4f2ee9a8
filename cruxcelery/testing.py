"""Test helpers users can use in their own suites: an in-memory record sink that checks every
record against the v5 models, and small queries over what it holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cruxcelery.telemetry.exporter import FlushResult, JsonRecord
from cruxcelery.telemetry.records import validate_record


class MemorySink:
    """Keeps every record in memory. With ``validate=True`` (the default) each record is checked
    against the v5 models on arrival; failures are kept in ``invalid`` (never raised)."""

    def __init__(self, *, validate: bool = True) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self.invalid: list[tuple[dict[str, Any], str]] = []
        self.validate = validate

    def export(self, records: Sequence[JsonRecord]) -> None:
        for record in records:
            copy = dict(record)
            if self.validate:
                try:
                    validate_record(copy)
                except Exception as exc:
                    with self._lock:
                        self.invalid.append((copy, str(exc)))
            with self._lock:
                self._records.append(copy)

    def flush(self, timeout_s: float) -> FlushResult:
        return FlushResult(status="drained", delivered=len(self._records))

    def shutdown(self, timeout_s: float) -> FlushResult:
        return self.flush(timeout_s)

    # -- queries ---------------------------------------------------------------------------------
    @property
    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self.invalid.clear()

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == type_]

    def spans(self, name: str | None = None, primitive: str | None = None) -> list[dict[str, Any]]:
        """``span:start`` records, optionally by name and primitive."""
        return [
            r for r in self.of_type("span:start")
            if (name is None or r["name"] == name) and (primitive is None or r["primitive"] == primitive)
        ]

    def span_end(self, span_id: str) -> dict[str, Any] | None:
        return next((r for r in self.of_type("span:end") if r["spanId"] == span_id), None)

    def events(self, name: str | None = None, span_id: str | None = None) -> list[dict[str, Any]]:
        return [
            r for r in self.of_type("span:event")
            if (name is None or r["name"] == name) and (span_id is None or r["spanId"] == span_id)
        ]

    def artifacts(self, span_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.of_type("artifact")
                if r["spanId"] == span_id and (kind is None or r["kind"] == kind)]

    def run_records(self, run_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["runId"] == run_id]

    def wait_for(self, predicate: Callable[[MemorySink], bool], timeout_s: float = 10.0) -> bool:
        """Poll until ``predicate(self)`` holds (records arrive from worker threads)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Records written by ``CRUX_RECORDS_FILE`` (a subprocess worker), in file order."""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []
