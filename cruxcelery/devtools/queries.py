"""SQL of the read side: run lists, a run's records, links, search, flows, counts."""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from cruxcelery.devtools.models import RunLinkOut, RunLinksOut, RunSummaryOut, SearchHitOut
from cruxcelery.devtools.timeutil import parse_ms

__all__ = ["RunFilter", "decode_cursor", "encode_cursor", "list_runs", "run_links", "run_raw_records", "search"]

_RUN_COLUMNS = "run_id, name, root_primitive, status, started_at, ended_at, operation_id, parent_run_id, record_count"
MAX_LIMIT = 500
MAX_PAGE_BYTES = 8 * 1024 * 1024
"""A page of ``records_after`` stops at the record that reaches this many bytes."""


@dataclass(frozen=True, slots=True)
class RunFilter:
    status: str | None = None
    name: str | None = None
    root_primitive: str | None = None
    flow_id: str | None = None
    since: str | None = None
    parent_run_id: str | None = None


def encode_cursor(started_ms: float, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([started_ms, run_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ``ValueError`` for a cursor this server did not make."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        started_ms, run_id = value
        if not isinstance(run_id, str) or not isinstance(started_ms, int | float):
            raise TypeError
        return float(started_ms), run_id
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


def summary_of(row: tuple[Any, ...]) -> RunSummaryOut:
    return RunSummaryOut(
        run_id=row[0], name=row[1], root_primitive=row[2], status=row[3], started_at=row[4], ended_at=row[5],
        operation_id=row[6], parent_run_id=row[7], record_count=row[8],
    )


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_runs(conn: sqlite3.Connection, where: RunFilter, cursor: str | None, limit: int
              ) -> tuple[list[RunSummaryOut], str | None]:
    """Newest first (by start), keyset-paged."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.status:
        clauses.append("status = ?")
        params.append(where.status)
    if where.name:
        clauses.append("name LIKE ? ESCAPE '\\'")
        params.append(_like(where.name))
    if where.root_primitive:
        clauses.append("root_primitive = ?")
        params.append(where.root_primitive)
    if where.parent_run_id:
        clauses.append("parent_run_id = ?")
        params.append(where.parent_run_id)
    if where.flow_id:
        clauses.append("run_id IN (SELECT run_id FROM run_flows WHERE flow_id = ?)")
        params.append(where.flow_id)
    if where.since:
        since = parse_ms(where.since)
        if since is None:
            raise ValueError("since must be an ISO 8601 timestamp")
        clauses.append("started_ms >= ?")
        params.append(since)
    if cursor:
        started_ms, run_id = decode_cursor(cursor)
        clauses.append("(started_ms < ? OR (started_ms = ? AND run_id < ?))")
        params += [started_ms, started_ms, run_id]
    sql = f"SELECT {_RUN_COLUMNS}, started_ms FROM runs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY started_ms DESC, run_id DESC LIMIT ?"
    limit = max(1, min(limit, MAX_LIMIT))
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    runs = [summary_of(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][9], rows[limit - 1][0]) if len(rows) > limit else None
    return runs, next_cursor


def run_records(conn: sqlite3.Connection, run_id: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT raw FROM records WHERE run_id = ? ORDER BY seq", (run_id,))]


def run_raw_records(conn: sqlite3.Connection, run_id: str) -> str | None:
    """``{"runId": ..., "records": [...]}`` with every record's text exactly as ingested."""
    raws = run_records(conn, run_id)
    if not raws:
        return None
    return '{"runId":' + json.dumps(run_id) + ',"records":[' + ",".join(raws) + "]}"


def records_after(conn: sqlite3.Connection, after: int, limit: int) -> str:
    """``{"records": [...], "nextAfter": seq}``: every stored record in arrival order, raw; at most
    ``limit`` records, and none after the one that reaches ``MAX_PAGE_BYTES``."""
    raws: list[str] = []
    size, last = 0, after
    for seq, raw in conn.execute("SELECT seq, raw FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                                 (after, max(1, min(limit, 10_000)))):
        raws.append(raw)
        size, last = size + len(raw), seq
        if size >= MAX_PAGE_BYTES:
            break
    return '{"records":[' + ",".join(raws) + '],"nextAfter":' + str(last) + "}"


def _link(conn: sqlite3.Connection, run_id: str, kind: str, span_id: str | None) -> RunLinkOut:
    row = conn.execute("SELECT name, status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return RunLinkOut(run_id=run_id, name=row[0] if row else None, status=row[1] if row else None, kind=kind,
                      span_id=span_id)


def run_links(conn: sqlite3.Connection, run_id: str, parent_run_id: str | None) -> RunLinksOut:
    """The parent run, child runs (by ``parentRunId``) and runs linked by ``edge`` records."""
    children = [
        RunLinkOut(run_id=r[0], name=r[1], status=r[2], kind="child", span_id=r[3])
        for r in conn.execute(
            "SELECT run_id, name, status, triggered_by_span_id FROM runs WHERE parent_run_id = ?"
            " ORDER BY started_ms", (run_id,))
    ]
    by = [_link(conn, r[0], r[1] or "edge", r[2]) for r in conn.execute(
        "SELECT from_run_id, kind, from_span_id FROM edges WHERE to_run_id = ? AND from_run_id IS NOT NULL",
        (run_id,))]
    scheduled = [_link(conn, r[0], r[1] or "edge", r[2]) for r in conn.execute(
        "SELECT to_run_id, kind, from_span_id FROM edges WHERE from_run_id = ? AND to_run_id IS NOT NULL",
        (run_id,))]
    parent = _link(conn, parent_run_id, "parent", None) if parent_run_id else None
    return RunLinksOut(parent=parent, children=children, scheduled_by=by, scheduled=scheduled)


def search(conn: sqlite3.Connection, query: str, limit: int = 100) -> list[SearchHitOut]:
    """Spans and runs whose name, or one of whose attributes, contains ``query``."""
    pattern = _like(query)
    rows = conn.execute(
        "SELECT n.run_id, n.span_id, n.name, n.primitive, n.name LIKE ? ESCAPE '\\', r.name, r.status"
        " FROM names n LEFT JOIN runs r ON r.run_id = n.run_id"
        " WHERE n.name LIKE ? ESCAPE '\\' OR n.attributes LIKE ? ESCAPE '\\'"
        " OR (n.run_id = ? AND n.span_id IS NULL)"
        " ORDER BY r.started_ms DESC LIMIT ?",
        (pattern, pattern, pattern, query, max(1, min(limit, MAX_LIMIT))),
    ).fetchall()
    return [
        SearchHitOut(run_id=r[0], span_id=r[1], name=r[2], primitive=r[3],
                     matched="run" if r[1] is None else ("name" if r[4] else "attribute"),
                     run_name=r[5], run_status=r[6])
        for r in rows
    ]


def flow_run_ids(conn: sqlite3.Connection, flow_id: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT f.run_id FROM run_flows f JOIN runs r ON r.run_id = f.run_id WHERE f.flow_id = ?"
        " ORDER BY r.started_ms", (flow_id,))]


def counts(conn: sqlite3.Connection) -> tuple[int, int, int, dict[str, int]]:
    records = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    row = conn.execute("SELECT value FROM counters WHERE name = 'unknownRecordTypes'").fetchone()
    by_type = dict(conn.execute("SELECT type, COUNT(*) FROM records GROUP BY type").fetchall())
    return records, runs, row[0] if row else 0, by_type
