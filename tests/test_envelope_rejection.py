"""Malformed, oversized, unsigned and forged envelopes: logged, and the task runs as a new root."""

from __future__ import annotations

import json
import logging

import pytest

from cruxcelery.core.envelope import Envelope, EnvelopeCodec
from cruxcelery.core.publishing import outgoing
from tests.helpers import only, wait_span
from tests.parking import parking

VALID = {
    "v": 1, "kind": "continuation", "operation_id": "run_" + "a" * 24, "run_id": "run_" + "a" * 24,
    "trace_id": "b" * 32, "parent_span_id": "c" * 16, "segment_id": "seg_" + "d" * 24,
}


def _run_with_header(sink, celery_test_app, header, caplog):
    with caplog.at_level(logging.WARNING, logger="cruxcelery.core.envelope"):
        celery_test_app.leaf.apply_async(({"topic": "x"},), headers={"crux": header}).get(timeout=10)
        leaf = wait_span(sink, "leaf")[0]
    return leaf


def _assert_new_root(sink, leaf):
    assert leaf["runId"] != VALID["run_id"] and leaf.get("parentSpanId") is None
    assert only(sink.of_type("run:start"))["runId"] == leaf["runId"]


@pytest.mark.parametrize("header", ["{not json", json.dumps({"v": 1, "kind": "continuation"}),
                                    json.dumps({**VALID, "trace_id": "nothex"}), 12345])
def test_malformed_envelope_runs_the_task_as_a_new_root(sink, celery_test_app, caplog, header):
    leaf = _run_with_header(sink, celery_test_app, header, caplog)
    _assert_new_root(sink, leaf)
    assert "ignoring malformed envelope" in caplog.text


def test_oversized_envelope_runs_the_task_as_a_new_root(sink, celery_test_app, caplog):
    header = json.dumps({**VALID, "label": "x" * 5000})
    leaf = _run_with_header(sink, celery_test_app, header, caplog)
    _assert_new_root(sink, leaf)
    assert "ignoring oversized envelope" in caplog.text


@pytest.fixture()
def signing(celery_test_app):
    crux = celery_test_app.crux
    original = crux.codec
    crux.codec = EnvelopeCodec(original.max_bytes, b"test-signing-key")
    yield crux.codec
    crux.codec = original


def test_unsigned_envelope_is_ignored_when_a_signing_key_is_set(sink, celery_test_app, caplog, signing):
    leaf = _run_with_header(sink, celery_test_app, json.dumps(VALID), caplog)
    _assert_new_root(sink, leaf)
    assert "ignoring unsigned envelope" in caplog.text


def test_forged_envelope_is_ignored_when_a_signing_key_is_set(sink, celery_test_app, caplog, signing):
    forged = json.dumps({**VALID, "sig": "0" * 64})
    leaf = _run_with_header(sink, celery_test_app, forged, caplog)
    _assert_new_root(sink, leaf)
    assert "ignoring forged envelope" in caplog.text


def test_a_signed_envelope_copied_onto_another_task_is_ignored_as_forged(sink, celery_test_app, caplog, signing):
    with parking(celery_test_app) as lot:
        with outgoing(Envelope.model_validate(VALID)):  # signed for the parked task's id and name
            celery_test_app.leaf.apply_async(({"topic": "parked"},), queue=lot.queue)
        copied = lot.header("crux")
    leaf = _run_with_header(sink, celery_test_app, copied, caplog)
    _assert_new_root(sink, leaf)
    assert "ignoring forged envelope" in caplog.text


def test_signed_envelopes_propagate_with_a_signing_key(sink, celery_test_app, signing):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    assert leaf["runId"] == only(sink.spans(name="parent"))["runId"]


def test_decode_never_raises_on_hostile_input():
    codec = EnvelopeCodec(4096, b"k")
    for raw in [b"\xff\xfe", [], {"v": 2}, "null", '{"v": 1}' * 1000, object()]:
        assert codec.decode(raw) is None


def test_a_captured_carrier_passed_as_json_verifies_with_a_signing_key(sink, celery_test_app, signing):
    celery_test_app.json_carrier.delay({}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    assert leaf["runId"] == only(sink.spans(name="json carrier"))["runId"]


@pytest.mark.subprocess
def test_a_deeply_nested_header_is_dropped_at_receipt_and_the_worker_lives_on(tmp_path, celery_test_app):
    """A 600-deep list (1.2 KB, under the size cap) once killed the worker's main process while it
    pickled the request for its pool: anyone who could publish could take workers down."""
    from tests.workers import subprocess_worker

    deep: list[object] = []
    for _ in range(600):
        deep = [deep]
    with subprocess_worker(tmp_path, concurrency=1) as worker:
        first = celery_test_app.leaf.apply_async(({"topic": "deep"},), headers={"crux": deep}, queue=worker.queue)
        assert first.get(timeout=30) is not None, worker.log()[-3000:]
        second = celery_test_app.leaf.apply_async(({"topic": "after"},), queue=worker.queue)
        assert second.get(timeout=30) is not None, worker.log()[-3000:]
        assert worker.process.poll() is None, worker.log()[-3000:]
        assert "ignoring malformed envelope" in worker.log()
