"""Waiting for, and reading, the records of one agent run."""

from __future__ import annotations

import time
from typing import Any

from cruxcelery.testing import MemorySink


def settled(sink: MemorySink, runs: int = 1, timeout_s: float = 15.0, quiet_s: float = 0.3) -> list[dict[str, Any]]:
    """The sink's records once ``runs`` runs ended, every started span ended, and nothing new
    arrived for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        records = sink.records
        if len(records) != seen:
            seen, since = len(records), time.monotonic()
        started = {r["spanId"] for r in records if r["type"] == "span:start"}
        ended = {r["spanId"] for r in records if r["type"] == "span:end"}
        done = sum(r["type"] == "run:end" for r in records) >= runs and started <= ended
        if done and time.monotonic() - since >= quiet_s:
            return records
        time.sleep(0.02)
    raise AssertionError(f"the run did not settle: {[(r['type'], r.get('name')) for r in sink.records]}")


def starts(records: list[dict[str, Any]], primitive: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "span:start" and r["primitive"] == primitive]


def end_of(records: list[dict[str, Any]], span_id: str) -> dict[str, Any]:
    return next(r for r in records if r["type"] == "span:end" and r["spanId"] == span_id)


def events(records: list[dict[str, Any]], span_id: str, name: str | None = None) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "span:event" and r["spanId"] == span_id
            and (name is None or r["name"] == name)]


def artifacts(records: list[dict[str, Any]], span_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "artifact" and r["spanId"] == span_id
            and (kind is None or r["kind"] == kind)]


def one(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, f"expected one, got {len(items)}: {items}"
    return items[0]
