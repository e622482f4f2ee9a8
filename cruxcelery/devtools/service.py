"""The devtools service: ingest, reconciled reads and the cached run status behind the run list.

The ``runs`` table caches each run's reconciled status for the list. It is refreshed when a run is
read, for every run with new records (``dirty``) before a list is answered, and by the 1 s
background pass (``refresh``) for dirty runs and runs whose lease, deadline or staleness threshold
has come (``recheck_ms``). ``refresh`` returns the status changes, which ``live`` publishes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cruxcelery.devtools import queries
from cruxcelery.devtools.batch import RawRecord
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.detail import run_detail, run_out, segment_out
from cruxcelery.devtools.graph import RunGraph, build_graph
from cruxcelery.devtools.ingest import Ingestor, IngestResult
from cruxcelery.devtools.models import FlowOut, RunDetailOut, RunListOut, SearchOut, StatsOut
from cruxcelery.devtools.reconcile import STALE_AFTER_MS, reconcile
from cruxcelery.devtools.timeutil import iso

__all__ = ["DevtoolsService", "FlowSnapshots", "LifecycleChange"]

PARSED_RUNS_CACHED = 16


class FlowSnapshots(Protocol):
    """Reads a flow's current snapshot summary: ``(summary or None, error or None)``."""

    def __call__(self, flow_id: str) -> tuple[dict[str, Any] | None, str | None]: ...


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    run_id: str
    previous: str | None
    status: str
    ended_at: str | None


class DevtoolsService:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time,
                 stale_after_ms: float = STALE_AFTER_MS, flow_snapshots: FlowSnapshots | None = None) -> None:
        self.db = db
        self.clock = clock
        self.stale_after_ms = stale_after_ms
        self.flow_snapshots = flow_snapshots
        self.ingestor = Ingestor(db, clock)
        self._parsed: OrderedDict[str, tuple[int, list[dict[str, Any]]]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def now_ms(self) -> float:
        return self.clock() * 1000.0

    # -- writes -------------------------------------------------------------------------------
    def ingest(self, records: list[RawRecord]) -> IngestResult:
        return self.ingestor.ingest(records)

    # -- reconciled runs --------------------------------------------------------------------------
    def _records(self, conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
        """The run's parsed records in arrival order. Stored records never change, so the parsed
        records of recently read runs are kept and only newer ones are read and parsed."""
        with self._cache_lock:
            last_seq, records = self._parsed.pop(run_id, (0, []))
        rows = conn.execute("SELECT seq, raw FROM records WHERE run_id = ? AND seq > ? ORDER BY seq",
                            (run_id, last_seq)).fetchall()
        if rows:
            records = [*records, *(json.loads(raw) for _seq, raw in rows)]
            last_seq = rows[-1][0]
        with self._cache_lock:
            self._parsed[run_id] = (last_seq, records)
            while len(self._parsed) > PARSED_RUNS_CACHED:
                self._parsed.popitem(last=False)
        return records

    def _reconciled(self, run_id: str) -> tuple[RunGraph, float | None, int, LifecycleChange | None] | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT status, record_count FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            records = self._records(conn, run_id) if row is not None else []
        if row is None or not records:
            return None
        previous, count = row
        graph = build_graph(run_id, records)
        recheck = reconcile(graph, self.now_ms(), self.stale_after_ms)
        run = graph.run
        ended_at = iso(run.ended_ms) if run.ended_ms is not None else None
        with self.db.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, recheck_ms = ?,"
                " dirty = CASE WHEN record_count = ? THEN 0 ELSE 1 END WHERE run_id = ?",
                (run.status, ended_at, recheck, count, run_id),
            )
        change = LifecycleChange(run_id, previous, run.status, ended_at) if previous != run.status else None
        return graph, recheck, count, change

    def refresh(self, *, include_due: bool = True, limit: int = 200) -> list[LifecycleChange]:
        """Reconcile the runs with new records and (``include_due``) those whose recheck time has
        come. Returns the runs whose reconciled status changed."""
        with self.db.read() as conn:
            ids = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE dirty = 1 LIMIT ?", (limit,))]
            if include_due:
                ids += [r[0] for r in conn.execute(
                    "SELECT run_id FROM runs WHERE recheck_ms IS NOT NULL AND recheck_ms <= ? AND dirty = 0"
                    " LIMIT ?", (self.now_ms(), limit))]
        changes: list[LifecycleChange] = []
        for run_id in ids:
            result = self._reconciled(run_id)
            if result is not None and result[3] is not None:
                changes.append(result[3])
        return changes

    def run_detail(self, run_id: str, *, infrastructure: bool) -> tuple[RunDetailOut, LifecycleChange | None] | None:
        result = self._reconciled(run_id)
        if result is None:
            return None
        graph, recheck, count, change = result
        with self.db.read() as conn:
            links = queries.run_links(conn, run_id, graph.run.parent_run_id)
        detail = run_detail(graph, infrastructure=infrastructure, record_count=count, links=links,
                            recheck_ms=recheck)
        return detail, change

    def list_runs(self, where: queries.RunFilter, cursor: str | None,
                  limit: int) -> tuple[RunListOut, list[LifecycleChange]]:
        changes = self.refresh(include_due=False)
        with self.db.read() as conn:
            runs, next_cursor = queries.list_runs(conn, where, cursor, limit)
        return RunListOut(runs=runs, next_cursor=next_cursor), changes

    def raw_records(self, run_id: str) -> str | None:
        with self.db.read() as conn:
            return queries.run_raw_records(conn, run_id)

    def records_after(self, after: int, limit: int) -> str:
        with self.db.read() as conn:
            return queries.records_after(conn, after, limit)

    def search(self, query: str, limit: int = 100) -> SearchOut:
        with self.db.read() as conn:
            return SearchOut(query=query, results=queries.search(conn, query, limit))

    def flow(self, flow_id: str) -> FlowOut:
        with self.db.read() as conn:
            run_ids = queries.flow_run_ids(conn, flow_id)
        runs, segments = [], []
        for run_id in run_ids:
            result = self._reconciled(run_id)
            if result is None:
                continue
            graph, _recheck, count, _change = result
            runs.append(run_out(graph, count))
            segments += [segment_out(s) for s in sorted(graph.segments.values(), key=lambda s: s.first_ms or 0.0)]
        snapshot, error = (None, None)
        if self.flow_snapshots is not None:
            snapshot, error = self.flow_snapshots(flow_id)
        return FlowOut(flow_id=flow_id, runs=runs, segments=segments, snapshot=snapshot,
                       snapshot_source="redis" if snapshot is not None else None, snapshot_error=error)

    def stats(self) -> StatsOut:
        with self.db.read() as conn:
            records, runs, unknown, by_type = queries.counts(conn)
        return StatsOut(records=records, runs=runs, unknown_record_types=unknown, by_type=by_type,
                        journal_mode=self.db.journal_mode)
