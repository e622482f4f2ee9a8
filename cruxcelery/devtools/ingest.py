"""Store a batch of records with a disposition per record (DESIGN.md section 7, Crux's contract).

- The batch is stored in one transaction. If the transaction itself fails (the file is locked, the
  disk is full...), it is rolled back and the records are stored one by one, each in its own
  transaction; a record that still cannot be stored is rejected ``ingest_unavailable``, retryable.
- ``invalid_record``: the record fails base identity validation (``validation``).
- ``record_id_conflict``: a record with the same ``recordId`` and different content is stored.
  The same content again is an exact duplicate: accepted, stored once.
- ``segment_sequence_conflict``: another record already holds this ``(runId, segmentId,
  segmentSeq)``.
- Out-of-order records and concurrent segments are accepted as they come: nothing here depends
  on order. Unknown record types are stored raw and counted (``unknownRecordTypes``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cruxcelery.devtools.batch import RawRecord
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.timeutil import parse_ms
from cruxcelery.devtools.validation import Identity, check_record

__all__ = ["Disposition", "IngestResult", "Ingestor", "record_time_ms"]

Outcome = Literal["accepted", "rejected"]
UNKNOWN_COUNTER = "unknownRecordTypes"
_TIME_KEYS = ("startedAt", "resumedAt", "suspendedAt", "timestamp", "createdAt", "endedAt")


@dataclass(slots=True)
class Disposition:
    index: int
    record_id: str | None
    outcome: Outcome
    code: str | None = None
    retryable: bool = False
    duplicate: bool = False
    message: str | None = None


@dataclass(slots=True)
class IngestResult:
    dispositions: list[Disposition]
    unknown_types: int = 0
    touched_runs: set[str] = field(default_factory=set)
    new_runs: set[str] = field(default_factory=set)

    @property
    def retryable(self) -> bool:
        return any(d.retryable for d in self.dispositions)


def record_time_ms(record: dict[str, Any]) -> float | None:
    """The record's own time: when it started, resumed, happened or ended."""
    for key in _TIME_KEYS:
        value = parse_ms(record.get(key))
        if value is not None:
            return value
    return None


def _rejected(index: int, record_id: str | None, code: str, message: str | None = None,
              retryable: bool = False) -> Disposition:
    return Disposition(index, record_id, "rejected", code, retryable, message=message)


class Ingestor:
    """Stores batches in a ``Database``. Thread-safe (the database serializes writers)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def ingest(self, records: Sequence[RawRecord]) -> IngestResult:
        dispositions: list[Disposition | None] = [None] * len(records)
        valid: list[tuple[int, RawRecord, Identity]] = []
        for index, raw in enumerate(records):
            try:
                valid.append((index, raw, check_record(raw.value)))
            except ValueError as exc:
                rid = raw.value.get("recordId") if isinstance(raw.value, dict) else None
                dispositions[index] = _rejected(index, rid if isinstance(rid, str) else None, "invalid_record",
                                                str(exc))
        result = IngestResult([])
        try:
            with self.db.write() as conn:
                self._transaction(conn, valid, dispositions, result)
        except sqlite3.Error:
            result = IngestResult([])
            for item in valid:
                try:
                    with self.db.write() as conn:
                        self._transaction(conn, [item], dispositions, result)
                except sqlite3.Error as exc:
                    index, _raw, identity = item
                    dispositions[index] = _rejected(index, identity.record_id, "ingest_unavailable",
                                                    f"storage unavailable: {exc}", retryable=True)
        result.dispositions = [d for d in dispositions if d is not None]
        return result

    def _transaction(self, conn: sqlite3.Connection, items: list[tuple[int, RawRecord, Identity]],
                     dispositions: list[Disposition | None], result: IngestResult) -> None:
        staged: list[Disposition] = []
        touched: set[str] = set()
        new_runs: set[str] = set()
        seen_runs: set[str] = set()
        now = self.clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for index, raw, identity in items:
                staged.append(self._store(conn, index, raw, identity, now, touched, new_runs, seen_runs))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for disposition in staged:
            dispositions[disposition.index] = disposition
        result.unknown_types += sum(1 for index, _raw, ident in items if not ident.known
                                    and _stored(dispositions[index]))
        result.touched_runs |= touched
        result.new_runs |= new_runs

    def _store(self, conn: sqlite3.Connection, index: int, raw: RawRecord, ident: Identity, now: float,
               touched: set[str], new_runs: set[str], seen_runs: set[str]) -> Disposition:
        record: dict[str, Any] = raw.value
        try:
            conn.execute(
                "INSERT INTO records (record_id, run_id, segment_id, segment_seq, schema_version, type, known,"
                " received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident.record_id, ident.run_id, ident.segment_id, ident.segment_seq, record["schemaVersion"],
                 ident.type, int(ident.known), now, raw.text),
            )
        except sqlite3.IntegrityError:
            row = conn.execute("SELECT raw FROM records WHERE record_id = ?", (ident.record_id,)).fetchone()
            if row is None:
                return _rejected(index, ident.record_id, "segment_sequence_conflict",
                                 f"{ident.segment_id} #{ident.segment_seq} is held by another record")
            if row[0] == raw.text or json.loads(row[0]) == record:
                return Disposition(index, ident.record_id, "accepted", duplicate=True)
            return _rejected(index, ident.record_id, "record_id_conflict",
                             "a different record with this recordId is stored")
        if ident.run_id not in seen_runs:
            seen_runs.add(ident.run_id)
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (ident.run_id,)).fetchone() is None:
                new_runs.add(ident.run_id)
        _project(conn, ident, record, now)
        touched.add(ident.run_id)
        return Disposition(index, ident.record_id, "accepted")


def _stored(disposition: Disposition | None) -> bool:
    """Accepted and new (not an exact duplicate of a stored record)."""
    return disposition is not None and disposition.outcome == "accepted" and not disposition.duplicate


def _project(conn: sqlite3.Connection, ident: Identity, record: dict[str, Any], now: float) -> None:
    """Keep the projection tables in step with one new record."""
    run_id = ident.run_id
    at_ms = record_time_ms(record)
    if at_ms is None:
        at_ms = now * 1000.0
    operation = record.get("operationId")
    conn.execute(
        "INSERT INTO runs (run_id, operation_id, started_ms, started_at, last_received, record_count, dirty)"
        " VALUES (?, ?, ?, ?, ?, 1, 1) ON CONFLICT (run_id) DO UPDATE SET"
        " record_count = record_count + 1, dirty = 1, last_received = excluded.last_received,"
        " operation_id = COALESCE(operation_id, excluded.operation_id),"
        " started_at = CASE WHEN has_start = 0 AND excluded.started_ms < started_ms"
        "   THEN excluded.started_at ELSE started_at END,"
        " started_ms = CASE WHEN has_start = 0 AND excluded.started_ms < started_ms"
        "   THEN excluded.started_ms ELSE started_ms END",
        (run_id, operation if isinstance(operation, str) else None, at_ms, _iso_of(record), now),
    )
    if not ident.known:
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1", (UNKNOWN_COUNTER,),
        )
        return
    type_ = ident.type
    attributes = record.get("attributes") or {}
    if type_ == "run:start":
        started_ms = parse_ms(record.get("startedAt"))
        conn.execute(
            "UPDATE runs SET name = ?, root_primitive = ?, parent_run_id = ?, triggered_by_span_id = ?,"
            " has_start = 1, started_at = COALESCE(?, started_at), started_ms = COALESCE(?, started_ms)"
            " WHERE run_id = ?",
            (record.get("name"), record.get("rootPrimitive"), record.get("parentRunId"),
             record.get("triggeredBySpanId"), record.get("startedAt") if started_ms is not None else None,
             started_ms, run_id),
        )
        _name(conn, run_id, None, record, attributes)
    elif type_ in ("span:start", "span"):
        _name(conn, run_id, record.get("spanId"), record, attributes)
    elif type_ == "edge":
        conn.execute(
            "INSERT OR IGNORE INTO edges (record_id, kind, from_run_id, from_span_id, to_run_id, to_span_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ident.record_id, _s(record.get("kind") or record.get("edgeType")), _s(record.get("fromRunId")),
             _s(record.get("fromSpanId")), _s(record.get("toRunId")) or run_id, _s(record.get("toSpanId"))),
        )
    flow_id = record.get("flowId") or attributes.get("flowId")
    if isinstance(flow_id, str) and flow_id:
        conn.execute("INSERT OR IGNORE INTO run_flows (flow_id, run_id) VALUES (?, ?)", (flow_id, run_id))


def _name(conn: sqlite3.Connection, run_id: str, span_id: Any, record: dict[str, Any],
          attributes: dict[str, Any]) -> None:
    name = record.get("name")
    if not isinstance(name, str):
        return
    attrs = json.dumps(attributes, separators=(",", ":"), ensure_ascii=False, default=str) if attributes else None
    conn.execute(
        "INSERT INTO names (run_id, span_id, name, primitive, attributes) VALUES (?, ?, ?, ?, ?)",
        (run_id, _s(span_id), name, _s(record.get("primitive") or record.get("rootPrimitive")), attrs),
    )


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _iso_of(record: dict[str, Any]) -> str | None:
    for key in _TIME_KEYS:
        value = record.get(key)
        if isinstance(value, str) and parse_ms(value) is not None:
            return value
    return None
