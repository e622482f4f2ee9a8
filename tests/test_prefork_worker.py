"""The same guarantees with a real prefork worker in a subprocess (records via CRUX_RECORDS_FILE)."""

from __future__ import annotations

import time

import pytest

from cruxcelery.telemetry.records import validate_record
from cruxcelery.testing import read_jsonl
from tests.helpers import assert_segment_sequences
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess


def _wait_records(path, predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = read_jsonl(str(path))
        if predicate(records):
            return records
        time.sleep(0.1)
    return read_jsonl(str(path))


def test_prefork_children_keep_one_run_across_processes(tmp_path, celery_test_app):
    records_file = tmp_path / "records.jsonl"
    with subprocess_worker(tmp_path, env={"CRUX_RECORDS_FILE": str(records_file)}) as worker:
        celery_test_app.parent.apply_async(({"topic": "prefork"},), queue=worker.queue).get(timeout=20)
        records = _wait_records(records_file, lambda rs: any(
            r["type"] == "span:event" and r["name"] == "runtime.celery.boundary.completed"
            and r["attributes"].get("status") == "ok" for r in rs) and sum(
            r["type"] == "span:end" for r in rs) >= 5)
    for record in records:
        validate_record(record)
    assert_segment_sequences(records)
    starts = {r["name"]: r for r in records if r["type"] == "span:start"}
    assert len({(starts[n]["runId"], starts[n]["traceId"]) for n in ("parent", "child", "leaf")}) == 1
    assert starts["leaf"]["parentSpanId"] == starts["call grandchild"]["spanId"]
    assert starts["child"]["parentSpanId"] == starts["call child"]["spanId"]
    assert len({r["recordId"] for r in records}) == len(records), "record ids are unique across processes"


def test_a_task_requeued_after_its_pool_child_died_keeps_the_envelope(tmp_path, celery_test_app):
    import uuid

    records_file = tmp_path / "records.jsonl"
    topic = f"dying-{uuid.uuid4().hex[:8]}"
    with subprocess_worker(tmp_path, env={"CRUX_RECORDS_FILE": str(records_file)}) as worker:
        celery_test_app.parent_of_dying.apply_async(({"topic": topic},), queue=worker.queue).get(timeout=20)
        records = _wait_records(records_file, lambda rs: any(
            r["type"] == "span:event" and r["name"].endswith("boundary.completed") for r in rs), timeout_s=30)
        assert "WorkerLostError" in worker.log() or "lost" in worker.log().lower(), worker.log()[-2000:]
    starts = {r["name"]: r for r in records if r["type"] == "span:start"}
    boundary, dying = starts["call dying child"], starts["dies once"]
    assert dying["runId"] == starts["parent of dying"]["runId"]
    assert dying["parentSpanId"] == boundary["spanId"]
    received = [r for r in records if r["type"] == "span:event" and r["name"].endswith("boundary.received")]
    assert len(received) == 2, "both deliveries acknowledged the same boundary"
