"""Records reach devtools over HTTP; a dead or hanging devtools never hurts the task."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from cruxcelery import CruxSettings
from cruxcelery.delivery.build import http_exporter
from cruxcelery.telemetry.records import validate_record
from tests.helpers import only, wait_span
from tests.receiver import Receiver, free_port

FLUSH_BOUND_S = 1.0  # the test app's CRUX_FLUSH_TIMEOUT_S


@pytest.fixture()
def devtools(celery_test_app, worker) -> Iterator[Receiver]:
    """A real receiver on 127.0.0.1 wired into the test app's Crux as an HTTP exporter."""
    with Receiver() as receiver:
        exporter = http_exporter(CruxSettings(devtools_url=receiver.url))
        assert exporter is not None
        celery_test_app.crux.add_exporter(exporter)
        try:
            yield receiver
        finally:
            celery_test_app.crux.remove_exporter(exporter)
            exporter.shutdown(1.0)


@pytest.fixture()
def dead_devtools(celery_test_app, worker) -> Iterator[None]:
    exporter = http_exporter(CruxSettings(devtools_url=f"http://127.0.0.1:{free_port()}"))
    assert exporter is not None
    celery_test_app.crux.add_exporter(exporter)
    yield
    celery_test_app.crux.remove_exporter(exporter)
    exporter.shutdown(0.1)


def _timed(sink, name: str, call) -> tuple[float, object]:
    """How long the action ``name`` took from the moment it started running (its ``run:start``)
    until its result was back: earlier work still queued in the worker does not count."""
    value = call()
    returned = time.time()
    start = [r for r in sink.of_type("run:start") if r["name"] == name][-1]
    started = dt.datetime.fromisoformat(start["startedAt"].replace("Z", "+00:00")).timestamp()
    return returned - started, value


def test_every_record_of_a_run_reaches_devtools(sink, celery_test_app, devtools):
    celery_test_app.parent.delay({"topic": "http"}).get(timeout=10)
    wait_span(sink, "leaf")
    assert devtools.wait_for(records=len(sink.records), timeout=10)
    assert sorted(devtools.record_ids()) == sorted(r["recordId"] for r in sink.records)
    for record in devtools.records():
        validate_record(record)
    assert all(r.path == "/api/observability/records" for r in devtools.requests())


def test_a_dead_devtools_server_costs_an_action_at_most_the_flush_bound(sink, celery_test_app, dead_devtools):
    baseline, _ = _timed(sink, "leaf", lambda: celery_test_app.leaf.delay({"topic": "warm"}).get(timeout=10))
    elapsed, result = _timed(sink, "parent", lambda: celery_test_app.parent.delay({"topic": "dead"}).get(timeout=10))
    assert result == {"ok": True}
    assert elapsed - baseline <= FLUSH_BOUND_S + 0.3, f"{elapsed:.3f}s against a {baseline:.3f}s baseline"


def test_a_hanging_devtools_server_costs_an_action_at_most_the_flush_bound(sink, celery_test_app, devtools):
    baseline, _ = _timed(sink, "leaf", lambda: celery_test_app.leaf.delay({"topic": "warm"}).get(timeout=10))
    devtools.hang(30, times=1000)
    try:
        elapsed, result = _timed(sink, "parent",
                                 lambda: celery_test_app.parent.delay({"topic": "hung"}).get(timeout=10))
    finally:
        devtools.release()
    assert result == {"ok": True}
    assert elapsed - baseline <= FLUSH_BOUND_S + 0.3, f"{elapsed:.3f}s against a {baseline:.3f}s baseline"


def test_cyclic_huge_binary_and_arbitrary_values_arrive_as_json_safe_previews(sink, celery_test_app, devtools):
    celery_test_app.unsafe.delay({}).get(timeout=10)
    assert devtools.wait_for(records=5, timeout=10)
    received = {r["type"] + ":" + r.get("name", r.get("kind", "")): r for r in devtools.records()}
    for record in (received["span:event:unsafe.event"]["attributes"],
                   received["artifact:unsafe.artifact"]["preview"]):
        json.dumps(record)  # plain JSON all the way down
        assert record["cyclic"] == {"name": "loop", "self": "[Circular]"}
        assert len(record["huge"]) < 65_000 and record["huge"].endswith("chars]")
        assert record["binary"]["$bytes"] == 5
        assert record["object"] == "[Opaque] <Opaque thing>"
        assert len(record["many"]) == 201 and record["many"][-1] == "[... 800 more items]"


def test_time_limits_and_timeouts_record_deadlines(sink, celery_test_app):
    celery_test_app.deadlines.delay({}).get(timeout=10)
    action = wait_span(sink, "deadlines")[0]
    query = only(sink.spans(name="bounded query"))
    assert action["deadlineAt"] > action["startedAt"] and query["deadlineAt"] > query["startedAt"]


def test_flush_observability_delivers_what_is_pending(sink, celery_test_app, devtools):
    from cruxcelery import flush_observability

    celery_test_app.leaf.delay({"topic": "pending"}).get(timeout=10)
    result = flush_observability(timeout_s=2.0)
    assert result.status == "drained"
    assert devtools.wait_for(records=4, timeout=5)


def test_with_observability_flush_works_as_decorator_and_context_manager(celery_test_app, devtools):
    from cruxcelery import with_observability_flush

    @with_observability_flush(timeout_s=1.0)
    def handler(value: int) -> int:
        return value * 2

    assert handler(21) == 42
    with with_observability_flush():
        pass
