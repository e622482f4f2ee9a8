"""The devtools SQLite file: schema, WAL mode, one writer connection and per-thread readers.

``records`` holds every accepted record exactly as it arrived (``raw``), in arrival order
(``seq``). The other tables are projections kept for the run list, search, flows and links; they
can be rebuilt from ``records`` at any time. ``:memory:`` (for tests) uses one shared connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Database", "default_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  record_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  segment_id TEXT NOT NULL,
  segment_seq INTEGER NOT NULL,
  schema_version INTEGER NOT NULL,
  type TEXT NOT NULL,
  known INTEGER NOT NULL,
  received_at REAL NOT NULL,
  raw TEXT NOT NULL,
  UNIQUE (run_id, segment_id, segment_seq)
);
CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id, seq);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  operation_id TEXT,
  name TEXT,
  root_primitive TEXT,
  parent_run_id TEXT,
  triggered_by_span_id TEXT,
  started_at TEXT,
  started_ms REAL NOT NULL,
  has_start INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'running',
  ended_at TEXT,
  dirty INTEGER NOT NULL DEFAULT 1,
  recheck_ms REAL,
  record_count INTEGER NOT NULL DEFAULT 0,
  last_received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_newest ON runs (started_ms DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_dirty ON runs (dirty) WHERE dirty = 1;
CREATE INDEX IF NOT EXISTS runs_recheck ON runs (recheck_ms) WHERE recheck_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id);
CREATE TABLE IF NOT EXISTS run_flows (
  flow_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  PRIMARY KEY (flow_id, run_id)
);
CREATE TABLE IF NOT EXISTS names (
  run_id TEXT NOT NULL,
  span_id TEXT,
  name TEXT NOT NULL,
  primitive TEXT,
  attributes TEXT
);
CREATE INDEX IF NOT EXISTS names_by_run ON names (run_id);
CREATE TABLE IF NOT EXISTS edges (
  record_id TEXT PRIMARY KEY,
  kind TEXT,
  from_run_id TEXT,
  from_span_id TEXT,
  to_run_id TEXT,
  to_span_id TEXT
);
CREATE INDEX IF NOT EXISTS edges_from ON edges (from_run_id);
CREATE INDEX IF NOT EXISTS edges_to ON edges (to_run_id);
CREATE TABLE IF NOT EXISTS counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
"""


def default_path() -> Path:
    """``$XDG_DATA_HOME/cruxcelery/devtools.sqlite3`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cruxcelery" / "devtools.sqlite3"


class Database:
    """Connections to one devtools database. ``write()`` serializes writers (one connection, one
    lock); ``read()`` gives each thread its own connection (WAL lets readers run beside the
    writer). With ``:memory:`` both share the writer connection and its lock."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.memory = self.path == ":memory:"
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._timeout = busy_timeout_s
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._writer.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        return conn

    @property
    def journal_mode(self) -> str:
        with self.read() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The writer connection, held exclusively (autocommit: callers run BEGIN/COMMIT)."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("database closed")
            yield self._writer

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        if self.memory:
            with self.write() as conn:
                yield conn
            return
        reader: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if reader is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("database closed")
                reader = self._connect()
                self._readers.append(reader)
            self._local.conn = reader
        yield reader

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in [*self._readers, self._writer]:
                conn.close()
            self._readers.clear()
