"""Delivery from a real prefork worker (-c 2) to a real receiver: nothing is lost at shutdown or
when pool children are recycled, and a boundary is announced before its child runs."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from cruxcelery.telemetry.records import validate_record
from cruxcelery.testing import read_jsonl
from tests.helpers import assert_segment_sequences
from tests.receiver import Receiver
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess

RUNS = 6  # parent -> child -> leaf: 3 actions and 2 boundaries each


@pytest.fixture()
def receiver():
    with Receiver() as server:
        yield server


def _run_and_shut_down(tmp_path, celery_test_app, receiver, *, flush_s="3", extra_args=(), spool="auto"):
    """Run RUNS parents, wait until the file sink (written synchronously) shows every span ended,
    then shut the worker down warm. Returns (records emitted, records devtools received)."""
    records_file = tmp_path / "records.jsonl"
    env = {"CRUX_DEVTOOLS_URL": receiver.url, "CRUX_FLUSH_TIMEOUT_S": flush_s,
           "CRUX_RECORDS_FILE": str(records_file), "CRUX_SPOOL": spool}
    with subprocess_worker(tmp_path, env=env, extra_args=extra_args) as worker:
        for i in range(RUNS):
            celery_test_app.parent.apply_async(({"topic": f"p{i}"},), queue=worker.queue)
        deadline = time.monotonic() + 60
        while sum(r["type"] == "span:end" for r in read_jsonl(str(records_file))) < RUNS * 5:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.05)
        assert worker.warm_shutdown(timeout_s=60) == 0, worker.log()[-3000:]
    return read_jsonl(str(records_file)), receiver.records()


def _assert_complete(records):
    for record in records:
        validate_record(record)
    assert_segment_sequences(records)
    starts = [r for r in records if r["type"] == "span:start"]
    ended = {r["spanId"] for r in records if r["type"] == "span:end"}
    assert len([s for s in starts if s["name"] == "leaf"]) == RUNS, "every grandchild ran and reported"
    assert len(starts) == RUNS * 5
    assert {s["spanId"] for s in starts} <= ended, "every span that started has ended"
    assert len([r for r in records if r["type"] == "run:end"]) == RUNS


def test_records_from_pool_children_arrive_before_a_warm_shutdown_completes(tmp_path, celery_test_app, receiver):
    # the HTTP path, no waiting in the actions' own flushes: what is still queued rides on the
    # shutdown hooks (with the spool, records are durable in Redis at once: tests/test_spool_delivery.py)
    emitted, received = _run_and_shut_down(tmp_path, celery_test_app, receiver, flush_s="0", spool="off")
    _assert_complete(emitted)
    assert sorted(r["recordId"] for r in received) == sorted(r["recordId"] for r in emitted)


def test_records_arrive_when_pool_children_are_recycled(tmp_path, celery_test_app, receiver):
    emitted, received = _run_and_shut_down(tmp_path, celery_test_app, receiver, flush_s="0", spool="off",
                                           extra_args=("--max-tasks-per-child", "1"))
    _assert_complete(emitted)
    assert sorted(r["recordId"] for r in received) == sorted(r["recordId"] for r in emitted)


def test_a_boundary_reaches_devtools_before_its_child_starts(tmp_path, celery_test_app, receiver):
    # the HTTP path (no spool) waits for devtools before publishing; with the spool, the boundary is
    # durable in Redis before the child is published and reaches devtools through a forwarder
    _, records = _run_and_shut_down(tmp_path, celery_test_app, receiver, spool="off")
    arrival: dict[str, float] = {}
    for request in receiver.requests():
        for record in request.records:
            arrival.setdefault(record["recordId"], request.arrived_wall)
    starts = {r["spanId"]: r for r in records if r["type"] == "span:start"}
    requested = [r for r in records if r["type"] == "span:event" and r["name"].endswith("boundary.requested")]
    assert len(requested) == RUNS * 2
    for event in requested:
        boundary_start = starts[event["spanId"]]
        child = next(s for s in starts.values() if s.get("parentSpanId") == event["spanId"])
        child_started = dt.datetime.fromisoformat(child["startedAt"].replace("Z", "+00:00")).timestamp()
        assert arrival[boundary_start["recordId"]] <= child_started + 0.001
        assert arrival[event["recordId"]] <= child_started + 0.001, "requested arrived after the child began"
