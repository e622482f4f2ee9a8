"""The projection tables (``runs``, ``names``, ``edges``, ``run_flows``, ``counters``) kept in step
with newly stored records, a batch at a time: one ``runs`` upsert per run per batch, the other rows
with ``executemany``. The result is the same as projecting the records one by one in order."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cruxcelery.devtools.fastjson as fastjson
from cruxcelery.devtools.timeutil import parse_ms
from cruxcelery.devtools.validation import Identity

__all__ = ["UNKNOWN_COUNTER", "project", "record_time_ms"]

UNKNOWN_COUNTER = "unknownRecordTypes"
_TIME_KEYS = ("startedAt", "resumedAt", "suspendedAt", "timestamp", "createdAt", "endedAt")


def record_time_ms(record: dict[str, Any]) -> float | None:
    """The record's own time: when it started, resumed, happened or ended."""
    return _time_of(record)[0]


def _time_of(record: dict[str, Any]) -> tuple[float | None, str | None]:
    for key in _TIME_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            ms = parse_ms(value)
            if ms is not None:
                return ms, value
    return None, None


@dataclass(slots=True)
class _RunRow:
    operation_id: str | None
    started_ms: float
    started_at: str | None
    count: int = 0


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def project(conn: sqlite3.Connection, items: Sequence[tuple[Identity, dict[str, Any]]], now: float) -> None:
    """Project ``items`` (newly stored records, in arrival order) inside the caller's transaction."""
    runs: dict[str, _RunRow] = {}
    starts: list[tuple[Any, ...]] = []
    names: list[tuple[Any, ...]] = []
    edges: list[tuple[Any, ...]] = []
    flows: set[tuple[str, str]] = set()
    unknown = 0
    for ident, record in items:
        run_id = ident.run_id
        at_ms, at_iso = _time_of(record)
        if at_ms is None:
            at_ms = now * 1000.0
        row = runs.get(run_id)
        if row is None:
            operation = record.get("operationId")
            runs[run_id] = row = _RunRow(operation if isinstance(operation, str) else None, at_ms, at_iso)
        elif at_ms < row.started_ms:
            row.started_ms, row.started_at = at_ms, at_iso
        if row.operation_id is None and isinstance(record.get("operationId"), str):
            row.operation_id = record["operationId"]
        row.count += 1
        if not ident.known:
            unknown += 1
            continue
        type_ = ident.type
        attributes = record.get("attributes") or {}
        if type_ == "run:start":
            started_ms = parse_ms(record.get("startedAt"))
            starts.append((record.get("name"), record.get("rootPrimitive"), record.get("parentRunId"),
                           record.get("triggeredBySpanId"), record.get("startedAt") if started_ms is not None else None,
                           started_ms, run_id))
            _name(names, run_id, None, record, attributes)
        elif type_ in ("span:start", "span"):
            _name(names, run_id, record.get("spanId"), record, attributes)
        elif type_ == "edge":
            edges.append((ident.record_id, _s(record.get("kind") or record.get("edgeType")),
                          _s(record.get("fromRunId")), _s(record.get("fromSpanId")),
                          _s(record.get("toRunId")) or run_id, _s(record.get("toSpanId"))))
        flow_id = record.get("flowId") or attributes.get("flowId")
        if isinstance(flow_id, str) and flow_id:
            flows.add((flow_id, run_id))
    conn.executemany(
        "INSERT INTO runs (run_id, operation_id, started_ms, started_at, last_received, record_count, dirty)"
        " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (run_id) DO UPDATE SET"
        " record_count = record_count + excluded.record_count, dirty = 1, last_received = excluded.last_received,"
        " operation_id = COALESCE(operation_id, excluded.operation_id),"
        " started_at = CASE WHEN has_start = 0 AND excluded.started_ms < started_ms"
        "   THEN excluded.started_at ELSE started_at END,"
        " started_ms = CASE WHEN has_start = 0 AND excluded.started_ms < started_ms"
        "   THEN excluded.started_ms ELSE started_ms END",
        [(run_id, r.operation_id, r.started_ms, r.started_at, now, r.count) for run_id, r in runs.items()],
    )
    if starts:
        conn.executemany(
            "UPDATE runs SET name = ?, root_primitive = ?, parent_run_id = ?, triggered_by_span_id = ?,"
            " has_start = 1, started_at = COALESCE(?, started_at), started_ms = COALESCE(?, started_ms)"
            " WHERE run_id = ?", starts)
    if names:
        conn.executemany("INSERT INTO names (run_id, span_id, name, primitive, attributes) VALUES (?, ?, ?, ?, ?)",
                         names)
    if edges:
        conn.executemany(
            "INSERT OR IGNORE INTO edges (record_id, kind, from_run_id, from_span_id, to_run_id, to_span_id)"
            " VALUES (?, ?, ?, ?, ?, ?)", edges)
    if flows:
        conn.executemany("INSERT OR IGNORE INTO run_flows (flow_id, run_id) VALUES (?, ?)", sorted(flows))
    if unknown:
        conn.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                     " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (UNKNOWN_COUNTER, unknown))


def _name(rows: list[tuple[Any, ...]], run_id: str, span_id: Any, record: dict[str, Any],
          attributes: dict[str, Any]) -> None:
    name = record.get("name")
    if not isinstance(name, str):
        return
    attrs = fastjson.dumps(attributes).decode("utf-8") if attributes else None
    rows.append((run_id, _s(span_id), name, _s(record.get("primitive") or record.get("rootPrimitive")), attrs))
