"""run_after: detached by default (its own run, linked), a continuation with capture_context()."""

from __future__ import annotations

from tests.helpers import only, wait_span


def test_detached_run_after_opens_its_own_run_linked_to_the_enqueuing_span(sink, celery_test_app):
    celery_test_app.schedules.delay({"topic": "detached"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    origin = only(sink.spans(name="schedules"))
    schedule = only(sink.spans(name="follow up"))
    assert schedule["primitive"] == "runtime.celery.schedule"
    assert schedule["parentSpanId"] == origin["spanId"] and schedule["runId"] == origin["runId"]
    assert sink.span_end(schedule["spanId"])["status"] == "ok"
    assert leaf["runId"] != origin["runId"] and leaf["traceId"] != origin["traceId"]
    assert leaf["parentSpanId"] is None if "parentSpanId" in leaf else True
    run = only([r for r in sink.of_type("run:start") if r["runId"] == leaf["runId"]])
    assert run["name"] == "leaf"
    edge = only(sink.of_type("edge"))
    assert (edge["fromRunId"], edge["fromSpanId"], edge["fromTraceId"]) == (
        origin["runId"], schedule["spanId"], origin["traceId"])
    assert (edge["toRunId"], edge["toSpanId"]) == (leaf["runId"], leaf["spanId"])
    requested = only(sink.events("runtime.celery.boundary.requested", span_id=schedule["spanId"]))
    assert requested["attributes"]["boundaryKind"] == "schedule"


def test_continuation_run_after_stays_in_the_run_under_a_new_segment(sink, celery_test_app):
    celery_test_app.schedules.delay({"topic": "continuation"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    origin = only(sink.spans(name="schedules"))
    assert (leaf["runId"], leaf["traceId"]) == (origin["runId"], origin["traceId"])
    assert leaf["segmentId"] != origin["segmentId"]
    assert leaf["parentSpanId"] == origin["spanId"], "the captured context's span is the parent"
    assert len(sink.of_type("run:start")) == 1 and not sink.of_type("edge")
