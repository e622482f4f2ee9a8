"""Record builders and small HTTP helpers for the devtools tests."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from cruxcelery.telemetry import ids

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")


def contract_case(name: str) -> dict[str, Any]:
    """One case of Crux's v5 contract cases (ported from use-crux/crux)."""
    cases = json.loads((FIXTURES / "crux_v5_contract_cases.json").read_text())["cases"]
    return next(case for case in cases if case["name"] == name)


def identity(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("recordId", "schemaVersion", "segmentId", "segmentSeq")}


def post(api: httpx.Client, records: list[Any], **kwargs: Any) -> httpx.Response:
    return api.post("/api/observability/records", json={"schemaVersion": 5, "records": records}, **kwargs)


def stored_records(api: httpx.Client) -> list[dict[str, Any]]:
    """Every record the server stored, in arrival order."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get("/api/records", params={"after": after}).json()
        if not page["records"]:
            return out
        out += page["records"]
        after = page["nextAfter"]


def wait_for(probe: Callable[[], T | None], timeout_s: float = 10.0, interval_s: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def iso(epoch_s: float) -> str:
    return ids.iso_ms(epoch_s)


class RunBuilder:
    """Builds the records of one run, as the runtime would emit them (valid v5 records)."""

    def __init__(self, name: str = "test run", primitive: str = "agent.run", started: float | None = None) -> None:
        self.run_id = ids.run_id()
        self.trace_id = ids.trace_id()
        self.name = name
        self.primitive = primitive
        self.started = time.time() if started is None else started
        self.segment_id = ids.segment_id()
        self._seq: dict[str, itertools.count[int]] = {}

    def record(self, type_: str, segment_id: str | None = None, **fields: Any) -> dict[str, Any]:
        segment = segment_id or self.segment_id
        counter = self._seq.setdefault(segment, itertools.count(1))
        return {"schemaVersion": 5, "recordId": ids.record_id(), "type": type_, "operationId": self.run_id,
                "runId": self.run_id, "segmentId": segment, "segmentSeq": next(counter), "traceId": self.trace_id,
                **{k: v for k, v in fields.items() if v is not None}}

    def start(self, at: float | None = None, **fields: Any) -> dict[str, Any]:
        return self.record("run:start", name=self.name, rootPrimitive=self.primitive,
                           startedAt=iso(self.started if at is None else at), status="running", **fields)

    def end(self, at: float, status: str = "ok", error: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.record("run:end", endedAt=iso(at), durationMs=round((at - self.started) * 1000, 3),
                           status=status, error=error)

    def suspend(self, at: float, reason: str = "await-signal") -> dict[str, Any]:
        return self.record("run:suspend", suspendedAt=iso(at), reason=reason)

    def span_start(self, span_id: str, name: str, at: float, parent: str | None = None,
                   primitive: str = "custom.operation", segment_id: str | None = None,
                   attributes: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        return self.record("span:start", segment_id, spanId=span_id, parentSpanId=parent,
                           family=primitive.split(".")[0], primitive=primitive, name=name, startedAt=iso(at),
                           status="running", attributes=attributes or {}, **fields)

    def span_end(self, span_id: str, at: float, started: float, status: str = "ok",
                 segment_id: str | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.record("span:end", segment_id, spanId=span_id, endedAt=iso(at),
                           durationMs=round((at - started) * 1000, 3), status=status, error=error)

    def event(self, span_id: str, name: str, at: float, attributes: dict[str, Any] | None = None,
              segment_id: str | None = None) -> dict[str, Any]:
        return self.record("span:event", segment_id, spanId=span_id, eventId=ids.event_id(), name=name,
                           timestamp=iso(at), attributes=attributes or {})

    def artifact(self, span_id: str, kind: str, at: float, preview: Any, text: bool = False) -> dict[str, Any]:
        return self.record("artifact", spanId=span_id, artifactId=ids.artifact_id(), kind=kind, createdAt=iso(at),
                           contentType="text/plain" if text else "application/json",
                           encoding="text" if text else "json", sizeBytes=len(json.dumps(preview)), preview=preview)
