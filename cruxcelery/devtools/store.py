"""The devtools store: ingest, reconciled reads and the cached run status behind the run list.

The ``runs`` table caches each run's reconciled status for the list. It is refreshed when a run is
read, for every run with new records (``dirty``) before a list is answered, and by the 1 s
background pass (``refresh``) for dirty runs and runs whose lease, deadline or staleness threshold
has come (``recheck_ms``). ``refresh`` returns the status changes, which ``live`` publishes.

No stored record fails a read: a record that cannot be parsed is left out of its run (with an
``unreadable_record`` diagnostic), and a run that cannot be reconciled is shown ``unreadable``
(``degraded``); the pass and the list go on past it. The caches of parsed and reconciled runs are
bounded by count and by bytes (``CACHE_BYTES``, counted as the records' JSON text and the bodies).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import cruxcelery.devtools.fastjson as fastjson
import cruxcelery.devtools.queries as queries
from cruxcelery.devtools.batch import RawRecord
from cruxcelery.devtools.cache import ByteLru
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.detail import Fragments, detail_json, run_out, segment_order, segment_out
from cruxcelery.devtools.graph import Diagnostic, RunGraph, build_graph
from cruxcelery.devtools.ingest import Ingestor, IngestResult
from cruxcelery.devtools.models import FlowOut, RunDetailOut, RunListOut, SearchOut, StatsOut
from cruxcelery.devtools.reconcile import STALE_AFTER_MS, reconcile
from cruxcelery.devtools.timeutil import iso

__all__ = ["DevtoolsService", "FlowSnapshots", "LifecycleChange"]

PARSED_RUNS_CACHED = 16
VIEWS_CACHED = 8
CACHE_BYTES = 32 * 1024 * 1024
"""The bound of each cache (parsed records, reconciled views), in bytes of JSON text."""
UNREADABLE = "unreadable"
_log = logging.getLogger("cruxcelery.devtools")


class FlowSnapshots(Protocol):
    """Reads a flow's current snapshot summary: ``(summary or None, error or None)``."""

    def __call__(self, flow_id: str) -> tuple[dict[str, Any] | None, str | None]: ...


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    run_id: str
    previous: str | None
    status: str
    ended_at: str | None


@dataclass(slots=True)
class RunView:
    """One run reconciled at one instant: valid until ``last_seq`` changes or ``recheck_ms`` comes.
    Read-only once made; the JSON bodies (without links) are made on first use and kept."""

    last_seq: int
    count: int
    graph: RunGraph
    recheck_ms: float | None
    fragments: dict[bool, Fragments] = field(default_factory=dict)  # seeded from the run's previous view
    bodies: dict[bool, bytes] = field(default_factory=dict)
    record_bytes: int = 0

    @property
    def size(self) -> int:
        return self.record_bytes + sum(len(b) for b in self.bodies.values())

    @property
    def ended_at(self) -> str | None:
        ended = self.graph.run.ended_ms
        return iso(ended) if ended is not None else None

    def body(self, infrastructure: bool) -> bytes:
        body = self.bodies.get(infrastructure)
        if body is None:
            try:
                body, fragments = detail_json(self.graph, self.graph.top_down(), infrastructure=infrastructure,
                                              record_count=self.count, recheck_ms=self.recheck_ms,
                                              previous=self.fragments.get(infrastructure))
            except Exception as exc:  # one run's records never fail a read
                self.graph = degraded(self.graph.run.run_id, exc)
                self.recheck_ms = None
                body, fragments = detail_json(self.graph, [], infrastructure=infrastructure, record_count=self.count,
                                              recheck_ms=None)
            self.bodies[infrastructure] = body
            self.fragments = {**self.fragments, infrastructure: fragments}
        return body


def degraded(run_id: str, exc: BaseException) -> RunGraph:
    """What is shown of a run whose records could not be reconciled: no spans, a diagnostic."""
    _log.warning("devtools: run %s cannot be reconciled: %s: %s", run_id, type(exc).__name__, exc)
    graph = build_graph(run_id, [])
    graph.run.status = graph.run.raw_status = UNREADABLE
    graph.run.diagnostics.append(Diagnostic("unreadable_run", f"the run's records cannot be reconciled:"
                                            f" {type(exc).__name__}: {str(exc)[:200]}", "devtools.read"))
    return graph


def _unreadable(graph: RunGraph, count: int) -> None:
    if count:
        graph.run.diagnostics.append(Diagnostic(
            "unreadable_record", f"{count} stored record(s) of this run cannot be parsed and are left out",
            "devtools.read"))


class DevtoolsService:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time,
                 stale_after_ms: float = STALE_AFTER_MS, flow_snapshots: FlowSnapshots | None = None,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.db = db
        self.clock = clock
        self.stale_after_ms = stale_after_ms
        self.flow_snapshots = flow_snapshots
        self.ingestor = Ingestor(db, clock)
        self._parsed: ByteLru[tuple[int, list[dict[str, Any]], int, int]] = ByteLru(PARSED_RUNS_CACHED,
                                                                                  cache_bytes)
        self._views: ByteLru[RunView] = ByteLru(VIEWS_CACHED, cache_bytes)
        self._cache_lock = threading.Lock()

    @property
    def cached_bytes(self) -> tuple[int, int]:
        """The bytes held by the parsed-records cache and by the reconciled-views cache."""
        with self._cache_lock:
            return self._parsed.bytes, self._views.bytes

    def now_ms(self) -> float:
        return self.clock() * 1000.0

    # -- writes -------------------------------------------------------------------------------
    def ingest(self, records: list[RawRecord]) -> IngestResult:
        return self.ingestor.ingest(records)

    # -- reconciled runs --------------------------------------------------------------------------
    def _records(self, conn: sqlite3.Connection, run_id: str) -> tuple[int, list[dict[str, Any]], int, int]:
        """The run's last record number, parsed records in arrival order, their bytes and how many
        could not be parsed (left out). Stored records never change, so the parsed records of
        recently read runs are kept and only newer ones are read."""
        with self._cache_lock:
            last_seq, records, size, unreadable = self._parsed.pop(run_id) or (0, [], 0, 0)
        rows = conn.execute("SELECT seq, raw FROM records WHERE run_id = ? AND seq > ? ORDER BY seq",
                            (run_id, last_seq)).fetchall()
        if rows:
            records = list(records)
            for _seq, raw in rows:
                size += len(raw)
                try:
                    records.append(fastjson.loads(raw))
                except ValueError:
                    unreadable += 1
            last_seq = rows[-1][0]
        with self._cache_lock:
            self._parsed.put(run_id, (last_seq, records, size, unreadable), size)
        return last_seq, records, size, unreadable

    def _reconciled(self, run_id: str, updates: list[tuple[Any, ...]] | None = None
                    ) -> tuple[RunView, LifecycleChange | None] | None:
        """The run reconciled as of now. A view stays valid until a new record arrives or its
        recheck time (the next lease, deadline or staleness threshold) comes. The run's cached
        status is written at once, or appended to ``updates`` (``_write_statuses``)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT status, dirty FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            last_seq, records, size, unreadable = self._records(conn, run_id) if row is not None else (0, [], 0, 0)
        if row is None or not (records or unreadable):
            return None
        previous, dirty = row
        now = self.now_ms()
        with self._cache_lock:
            view = self._views.get(run_id)
        if view is None or view.last_seq != last_seq or (view.recheck_ms is not None and now >= view.recheck_ms):
            try:
                graph = build_graph(run_id, records)
                recheck = reconcile(graph, now, self.stale_after_ms)
            except Exception as exc:  # one run's records never fail a read
                graph, recheck = degraded(run_id, exc), None
            _unreadable(graph, unreadable)
            view = RunView(last_seq, len(records) + unreadable, graph, recheck,
                           fragments=view.fragments if view is not None else {}, record_bytes=size)
            with self._cache_lock:
                self._views.put(run_id, view, view.size)
        run = view.graph.run
        if dirty or previous != run.status:
            update = (run.status, view.ended_at, view.recheck_ms, view.count, run_id)
            if updates is None:
                self._write_statuses([update])
            else:
                updates.append(update)
        change = LifecycleChange(run_id, previous, run.status, view.ended_at) if previous != run.status else None
        return view, change

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
        updates: list[tuple[Any, ...]] = []
        for run_id in ids:
            try:
                result = self._reconciled(run_id, updates)
            except Exception:  # a run that cannot be read at all (the database...): the pass goes on
                _log.exception("devtools: run %s cannot be read", run_id)
                continue
            if result is not None and result[1] is not None:
                changes.append(result[1])
            if len(updates) >= 50:
                self._write_statuses(updates)
                updates.clear()
        self._write_statuses(updates)
        return changes

    def _write_statuses(self, updates: list[tuple[Any, ...]]) -> None:
        """Cache reconciled statuses for the run list, in one transaction. A run whose record
        count moved on meanwhile stays dirty (the next pass takes it again)."""
        if not updates:
            return
        with self.db.write() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE runs SET status = ?, ended_at = ?, recheck_ms = ?,"
                    " dirty = CASE WHEN record_count = ? THEN 0 ELSE 1 END WHERE run_id = ?", updates)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def run_detail_json(self, run_id: str, *, infrastructure: bool) -> tuple[bytes, LifecycleChange | None] | None:
        """``GET /api/runs/{runId}`` as JSON bytes (``None``: no such run)."""
        result = self._reconciled(run_id)
        if result is None:
            return None
        view, change = result
        body = view.body(infrastructure)
        with self._cache_lock:
            if self._views.get(run_id) is view:
                self._views.put(run_id, view, view.size)
        with self.db.read() as conn:
            links = queries.run_links(conn, run_id, view.graph.run.parent_run_id)
        return body[:-1] + b',"links":' + links.model_dump_json(by_alias=True).encode() + b"}", change

    def run_detail(self, run_id: str, *, infrastructure: bool) -> tuple[RunDetailOut, LifecycleChange | None] | None:
        """The same as a validated model (for callers in Python)."""
        found = self.run_detail_json(run_id, infrastructure=infrastructure)
        if found is None:
            return None
        return RunDetailOut.model_validate_json(found[0]), found[1]

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
            graph = result[0].graph
            runs.append(run_out(graph, result[0].count))
            segments += [segment_out(s) for s in sorted(graph.segments.values(), key=segment_order)]
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
