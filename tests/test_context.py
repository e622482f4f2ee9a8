"""capture_context / with_context carry a run across boundaries cruxcelery does not wrap."""

from __future__ import annotations

from cruxcelery import capture_context, with_context
from tests.helpers import only, wait_span


def test_capture_context_outside_an_action_is_none(celery_test_app):
    assert capture_context() is None


def test_with_context_continues_the_run_in_another_thread(sink, celery_test_app):
    assert celery_test_app.threaded.delay({}).get(timeout=10) == {"value": 7}
    action = wait_span(sink, "threaded")[0]
    in_thread = only(sink.spans(name="in thread"))
    assert in_thread["runId"] == action["runId"] and in_thread["parentSpanId"] == action["spanId"]
    assert in_thread["segmentId"] != action["segmentId"]


def test_with_context_accepts_the_carrier_as_json(sink, celery_test_app):
    celery_test_app.json_carrier.delay({}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    assert leaf["runId"] == only(sink.spans(name="json carrier"))["runId"]


def test_with_context_ignores_an_invalid_carrier(celery_test_app):
    with with_context("garbage") as ctx:
        assert ctx is None and capture_context() is None


def test_apply_inside_an_action_nests_in_the_same_segment(sink, celery_test_app):
    celery_test_app.applies.delay({}).get(timeout=10)
    leaf, outer = wait_span(sink, "leaf")[0], wait_span(sink, "applies")[0]
    assert (leaf["segmentId"], leaf["parentSpanId"]) == (outer["segmentId"], outer["spanId"])
    assert len(sink.of_type("run:start")) == 1
