"""The telemetry spool end to end: real prefork workers (``tests.spool_app``) append every action's
records to a Redis stream (database 7) and their forwarders deliver them to a real receiver.
Records survive a SIGKILL of a pool child or of the whole worker, a dead devtools costs an action
no flush wait, and a ``SecretStr`` arg reaches no record."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cruxcelery.telemetry.spool.group import spool_stats
from cruxcelery.testing import read_jsonl
from tests.receiver import Receiver, free_port
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess

REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture()
def db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def setup(tmp_path: Path, db: redis.Redis) -> dict[str, Any]:
    prefix = f"crux-spool-{uuid.uuid4().hex[:8]}"
    port = free_port()
    records_file = tmp_path / "records.jsonl"
    env = {"CRUX_KEY_PREFIX": prefix, "CRUX_DEVTOOLS_URL": f"http://127.0.0.1:{port}",
           "CRUX_RECORDS_FILE": str(records_file), "CRUX_SPOOL_TEST_REDIS": REDIS_URL}
    return {"prefix": prefix, "port": port, "file": records_file, "env": env, "key": f"{prefix}:telemetry"}


def _app(setup: dict[str, Any]) -> Any:
    """The app, for publishing (the workers get their key prefix from ``setup["env"]``)."""
    from tests import spool_app

    return spool_app


def _wait(condition: Any, timeout_s: float, message: Any = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message() if callable(message) else message
        time.sleep(0.05)


def _emitted_ids(records_file: Path) -> list[str]:
    return [r["recordId"] for r in read_jsonl(str(records_file))] if records_file.exists() else []


def _wait_delivered(receiver: Receiver, records_file: Path, timeout_s: float, log: Any) -> None:
    emitted = set(_emitted_ids(records_file))
    assert emitted

    def missing() -> set[str]:
        return emitted - set(receiver.record_ids())

    _wait(lambda: not missing(), timeout_s, lambda: f"{len(missing())} of {len(emitted)} records never arrived\n"
          + log()[-3000:])


def _pool_child_pids(worker_pid: int) -> list[int]:
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def test_records_of_a_task_whose_pool_child_is_killed_right_after_it_returns_are_delivered(
    tmp_path: Path, setup: dict[str, Any], db: redis.Redis
) -> None:
    spool_app = _app(setup)
    with subprocess_worker(tmp_path, app="tests.spool_app", env=setup["env"], concurrency=2) as worker:
        _wait(lambda: len(_pool_child_pids(worker.process.pid)) == 2, 20, worker.log)
        # devtools is down: the records can only be in the spool (or the killed child's pending list)
        pid = spool_app.noop.apply_async(({"n": 1},), queue=worker.queue).get(timeout=30)
        os.kill(pid, signal.SIGKILL)
        stats = spool_stats(db, setup["key"])
        assert stats.entries_added == 1 and (stats.unread or 0) + stats.pending == 1, stats  # not delivered
        emitted = _emitted_ids(setup["file"])
        assert len(emitted) >= 4, "the action's records were emitted before it returned"
        with Receiver(port=setup["port"]) as receiver:  # devtools comes up after the kill
            _wait_delivered(receiver, setup["file"], 30, worker.log)
            assert _emitted_ids(setup["file"]) == emitted, "nothing else ran"
            assert sorted(receiver.record_ids()) == sorted(set(receiver.record_ids()))


def test_records_of_a_whole_killed_worker_are_delivered_by_a_restarted_one(
    tmp_path: Path, setup: dict[str, Any], db: redis.Redis
) -> None:
    spool_app = _app(setup)
    with subprocess_worker(tmp_path, app="tests.spool_app", env=setup["env"], concurrency=2) as worker:
        results = [spool_app.noop.apply_async(({"n": i},), queue=worker.queue) for i in range(20)]
        for result in results:
            result.get(timeout=30)
        worker.kill()  # SIGKILL to the main process and every pool child
        queue = worker.queue
    emitted = _emitted_ids(setup["file"])
    stats = spool_stats(db, setup["key"])
    assert stats.entries_added == 20 and stats.length == 20, stats
    with Receiver(port=setup["port"]) as receiver, subprocess_worker(
        tmp_path, app="tests.spool_app", env=setup["env"], concurrency=2, queue=queue
    ) as restarted:
        _wait_delivered(receiver, setup["file"], 30, restarted.log)
        ids = receiver.record_ids()
        assert set(ids) == set(emitted)
        _wait(lambda: spool_stats(db, setup["key"]).pending == 0, 10, "entries stay unacknowledged")
        final = spool_stats(db, setup["key"])
        assert final.unread == 0 and final.trimmed_unread == 0 and final.lost_pending == 0, final


def test_with_devtools_down_actions_do_not_wait_and_everything_is_delivered_once_when_it_returns(
    tmp_path: Path, setup: dict[str, Any], db: redis.Redis
) -> None:
    spool_app = _app(setup)
    actions = 1000
    with subprocess_worker(tmp_path, app="tests.spool_app", env=setup["env"], concurrency=2) as worker:
        started = time.monotonic()
        results = [spool_app.noop.apply_async(({"n": i},), queue=worker.queue) for i in range(actions)]
        for result in results:
            result.get(timeout=60)
        elapsed = time.monotonic() - started
        added_key = f"{setup['prefix']}:added-s"
        _wait(lambda: db.llen(added_key) == actions, 10, lambda: f"{db.llen(added_key)} timings")
        added = [float(v) for v in db.lrange(added_key, 0, -1)]
        # The flush budget is 3 s: not one action waited for it (nor for an HTTP request).
        assert max(added) < 0.5, f"slowest action added {max(added):.3f} s"
        assert statistics.median(added) < 0.005, f"p50 added {statistics.median(added) * 1000:.2f} ms"
        (tmp_path / "added-ms.txt").write_text(" ".join(f"{a * 1000:.3f}" for a in added))
        assert elapsed < 60
        emitted = _emitted_ids(setup["file"])
        stats = spool_stats(db, setup["key"])
        assert stats.entries_added == actions and stats.length == actions, stats  # one entry per action
        assert (stats.unread or 0) + stats.pending == actions, stats  # none acknowledged: nothing delivered
        with Receiver(port=setup["port"]) as receiver:
            _wait_delivered(receiver, setup["file"], 60, worker.log)
            _wait(lambda: spool_stats(db, setup["key"]).pending == 0, 10, "entries stay unacknowledged")
            ids = receiver.record_ids()
            assert len(ids) == len(set(ids)) == len(emitted), "every record delivered exactly once"
            assert set(ids) == set(emitted)


def test_a_secret_arg_echoed_in_an_exception_reaches_no_record(tmp_path: Path, setup: dict[str, Any]) -> None:
    spool_app = _app(setup)
    secret = "tok_" + uuid.uuid4().hex  # not shaped like a known key: only redaction by value finds it
    with Receiver(port=setup["port"]) as receiver, subprocess_worker(
        tmp_path, app="tests.spool_app", env=setup["env"], concurrency=1
    ) as worker:
        result = spool_app.leak.apply_async(
            ({"account": "acme", "credentials": {"user": "ann", "token": secret}},), queue=worker.queue
        )
        with pytest.raises(PermissionError):
            result.get(timeout=30)
        _wait_delivered(receiver, setup["file"], 30, worker.log)
        raw_bodies = b"".join(request.body for request in receiver.requests())
        raw_file = setup["file"].read_bytes()
        for raw in (raw_bodies, raw_file):
            assert secret.encode() not in raw
            assert secret[4:].encode() not in raw
        records = read_jsonl(str(setup["file"]))
        kinds = {r.get("kind") for r in records if r["type"] == "artifact"}
        assert {"error.stack", "error.raw"} <= kinds, "the error evidence is there, redacted"
        assert b"[REDACTED]" in raw_file
        assert b"login refused for ann with token [REDACTED]" in raw_file
        event = next(r for r in records if r["type"] == "span:event" and r["name"] == "login.attempt")
        assert json.dumps(event).count("[REDACTED]") == 1
