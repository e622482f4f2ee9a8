"""Store a batch of records with a disposition per record (Crux's ingest contract).

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
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cruxcelery.devtools.fastjson as fastjson
from cruxcelery.devtools.batch import RawRecord
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.projection import UNKNOWN_COUNTER, project, record_time_ms
from cruxcelery.devtools.validation import Identity, check_record

__all__ = ["UNKNOWN_COUNTER", "Disposition", "IngestResult", "Ingestor", "record_time_ms"]

Outcome = Literal["accepted", "rejected"]


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
                if _SURROGATE_ESCAPE.search(raw.text):
                    raw.text = _without_lone_surrogates(raw.text)
                    raw.value = json.loads(raw.text)
                if not raw.readable:
                    _readable(raw.text)
                valid.append((index, raw, check_record(raw.value)))
            except (ValueError, RecursionError) as exc:
                rid = raw.value.get("recordId") if isinstance(raw.value, dict) else None
                dispositions[index] = _rejected(index, rid if isinstance(rid, str) else None, "invalid_record",
                                                str(exc))
        result = IngestResult([])
        try:
            with self.db.write() as conn:
                self._transaction(conn, valid, dispositions, result)
        except _BATCH_FAILURES:
            result = IngestResult([])
            for item in valid:
                index, _raw, identity = item
                try:
                    with self.db.write() as conn:
                        self._transaction(conn, [item], dispositions, result)
                except sqlite3.Error as exc:
                    dispositions[index] = _rejected(index, identity.record_id, "ingest_unavailable",
                                                    f"storage unavailable: {exc}", retryable=True)
                except _UNSTORABLE as exc:  # one record SQLite cannot hold never fails the others
                    dispositions[index] = _rejected(index, identity.record_id, "invalid_record",
                                                    f"cannot be stored: {type(exc).__name__}: {exc}")
        result.dispositions = [d for d in dispositions if d is not None]
        return result

    def _transaction(self, conn: sqlite3.Connection, items: list[tuple[int, RawRecord, Identity]],
                     dispositions: list[Disposition | None], result: IngestResult) -> None:
        now = self.clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            known_runs = _existing_runs(conn, {ident.run_id for _i, _r, ident in items})
            staged, stored = self._insert(conn, items, now)
            project(conn, [(ident, raw.value) for _i, raw, ident in stored], now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for disposition in staged:
            dispositions[disposition.index] = disposition
        touched = {ident.run_id for _i, _r, ident in stored}
        result.unknown_types += sum(1 for _i, _r, ident in stored if not ident.known)
        result.touched_runs |= touched
        result.new_runs |= touched - known_runs

    def _insert(self, conn: sqlite3.Connection, items: list[tuple[int, RawRecord, Identity]], now: float
                ) -> tuple[list[Disposition], list[tuple[int, RawRecord, Identity]]]:
        """Insert the records: all at once when none collides with a stored one (the usual case),
        else one by one with a disposition each. Returns the dispositions and the stored items."""
        rows = [(ident.record_id, ident.run_id, ident.segment_id, ident.segment_seq, raw.value["schemaVersion"],
                 ident.type, int(ident.known), now, raw.text) for _i, raw, ident in items]
        conn.execute("SAVEPOINT batch")
        try:
            conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
        else:
            conn.execute("RELEASE batch")
            return [Disposition(index, ident.record_id, "accepted") for index, _r, ident in items], items
        staged: list[Disposition] = []
        stored: list[tuple[int, RawRecord, Identity]] = []
        for item, row in zip(items, rows, strict=True):
            disposition = self._store(conn, item, row)
            staged.append(disposition)
            if disposition.outcome == "accepted" and not disposition.duplicate:
                stored.append(item)
        return staged, stored

    def _store(self, conn: sqlite3.Connection, item: tuple[int, RawRecord, Identity], row: tuple[Any, ...]
               ) -> Disposition:
        index, raw, ident = item
        try:
            conn.execute(_INSERT, row)
        except sqlite3.IntegrityError:
            found = conn.execute("SELECT raw FROM records WHERE record_id = ?", (ident.record_id,)).fetchone()
            if found is None:
                return _rejected(index, ident.record_id, "segment_sequence_conflict",
                                 f"{ident.segment_id} #{ident.segment_seq} is held by another record")
            if found[0] == raw.text or json.loads(found[0]) == raw.value:
                return Disposition(index, ident.record_id, "accepted", duplicate=True)
            return _rejected(index, ident.record_id, "record_id_conflict",
                             "a different record with this recordId is stored")
        return Disposition(index, ident.record_id, "accepted")


_UNSTORABLE: tuple[type[Exception], ...] = (OverflowError, UnicodeError, ValueError, TypeError, RecursionError)
"""What a value SQLite cannot take raises (an integer past 64 bits...): the record is invalid."""
_BATCH_FAILURES: tuple[type[Exception], ...] = (sqlite3.Error, *_UNSTORABLE)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a surrogate escape: paired (harmless) or lone
_ESCAPES = re.compile(r"(\\\\)"  # an escaped backslash: what follows is text, not an escape
                      r"|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"  # a surrogate pair
                      r"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})")  # a lone surrogate


def _readable(text: str) -> None:
    """Raises ``ValueError`` unless reads can parse ``text`` back (``1e400`` is infinity to
    Python's decoder, an error to orjson's)."""
    try:
        fastjson.loads(text)
    except ValueError as exc:
        raise ValueError(f"not readable back: {exc}") from None


def _without_lone_surrogates(text: str) -> str:
    """The record's JSON text with every lone surrogate escape (JSON allows ``\\ud800`` alone;
    UTF-8, SQLite and orjson do not) replaced by ``\\ufffd``, as Go's JSON decoder does. Escaped
    backslashes and surrogate pairs are kept; nothing else changes."""
    return _ESCAPES.sub(lambda m: m.group(0) if m.group(3) is None else "\\ufffd", text)


_INSERT = ("INSERT INTO records (record_id, run_id, segment_id, segment_seq, schema_version, type, known,"
           " received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _existing_runs(conn: sqlite3.Connection, run_ids: set[str]) -> set[str]:
    ids = sorted(run_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        found.update(r[0] for r in conn.execute(
            f"SELECT run_id FROM runs WHERE run_id IN ({','.join('?' * len(part))})", part))
    return found
