"""Child actions across workers: one run, one trace, boundaries acknowledged by the child."""

from __future__ import annotations

from tests.helpers import assert_segment_sequences, only, wait_span


def test_parent_child_grandchild_share_operation_run_and_trace(sink, celery_test_app):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    wait_span(sink, "leaf")
    actions = [only(sink.spans(name=n)) for n in ("parent", "child", "leaf")]
    assert len({(s["operationId"], s["runId"], s["traceId"]) for s in actions}) == 1
    assert len({s["segmentId"] for s in actions}) == 3, "each worker execution is its own segment"
    assert actions[0]["operationId"] == actions[0]["runId"]


def test_child_spans_hang_under_their_boundary_span(sink, celery_test_app):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    wait_span(sink, "leaf")
    parent, child, leaf = (only(sink.spans(name=n)) for n in ("parent", "child", "leaf"))
    call_child = only(sink.spans(name="call child"))
    call_grandchild = only(sink.spans(name="call grandchild"))
    assert call_child["primitive"] == "runtime.celery.task"
    assert call_child["attributes"]["presentation"] == {"display": "detail"}
    assert call_child["parentSpanId"] == parent["spanId"]
    assert child["parentSpanId"] == call_child["spanId"]
    assert call_grandchild["parentSpanId"] == child["spanId"]
    assert leaf["parentSpanId"] == call_grandchild["spanId"]


def test_requested_received_completed_carry_one_boundary_id(sink, celery_test_app):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    wait_span(sink, "leaf")
    assert sink.wait_for(lambda s: len(s.events("runtime.celery.boundary.completed")) == 2)
    boundary = only(sink.spans(name="call child"))
    names = [e["name"] for e in sink.events(span_id=boundary["spanId"])]
    assert names == ["runtime.celery.boundary.requested", "runtime.celery.boundary.received",
                     "runtime.celery.boundary.completed"]
    events = sink.events(span_id=boundary["spanId"])
    assert len({e["attributes"]["boundaryId"] for e in events}) == 1
    requested = events[0]["attributes"]
    assert requested["boundarySpanId"] == boundary["spanId"]
    assert requested["boundaryKind"] == "task" and requested["taskName"] == "t.child"
    assert requested["boundaryLabel"] == "call child" and requested["leaseExpiresAt"].endswith("Z")
    assert sink.span_end(boundary["spanId"])["status"] == "ok"


def test_root_run_carries_name_primitive_and_attributes(sink, celery_test_app):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    wait_span(sink, "leaf")
    run = only(sink.of_type("run:start"))
    assert (run["name"], run["rootPrimitive"]) == ("parent", "agent.run")
    assert run["attributes"] == {"agentId": "tester"}
    assert only(sink.spans(name="parent"))["agentId"] == "tester"
    assert only(sink.of_type("run:end"))["status"] == "ok"


def test_failing_child_reports_failed_with_evidence_and_parent_run_ends_ok(sink, celery_test_app):
    celery_test_app.parent_of_failing.delay({"topic": "x"}).get(timeout=10)
    failing = wait_span(sink, "fails on purpose")[0]
    assert sink.wait_for(lambda s: s.events("runtime.celery.boundary.failed"))
    failed = only(sink.events("runtime.celery.boundary.failed"))
    assert failed["attributes"]["error"]["name"] == "Boom"
    end = sink.span_end(failing["spanId"])
    assert end["status"] == "error" and end["error"]["message"] == "cannot do x"
    exception = only(sink.events("exception", span_id=failing["spanId"]))
    assert exception["attributes"]["exception.type"].endswith("Boom")
    assert "Traceback" in exception["attributes"]["exception.stacktrace"]
    stack = only(sink.artifacts(failing["spanId"], "error.stack"))
    assert (stack["contentType"], stack["encoding"]) == ("text/plain", "text")
    raw = only(sink.artifacts(failing["spanId"], "error.raw"))["preview"]
    assert raw["name"] == "Boom" and raw["code"] == 42 and raw["api_key"] == "[REDACTED]"
    run_end = only(sink.of_type("run:end"))
    assert run_end["status"] == "ok" and run_end["runId"] == failing["runId"]


def test_evidence_comes_before_the_failing_span_end(sink, celery_test_app):
    celery_test_app.parent_of_failing.delay({"topic": "x"}).get(timeout=10)
    failing = wait_span(sink, "fails on purpose")[0]
    mine = [r for r in sink.records if r.get("spanId") == failing["spanId"]]
    kinds = [r["type"] if r["type"] != "artifact" else r["kind"] for r in mine]
    assert kinds.index("span:end") > max(kinds.index("span:event"), kinds.index("error.stack"),
                                         kinds.index("error.raw"))


def test_queries_and_mutations_are_child_spans_not_runs(sink, celery_test_app):
    assert celery_test_app.queries.delay({"topic": "abcd"}).get(timeout=10) == 4
    action = wait_span(sink, "queries")[0]
    query, mutation = only(sink.spans(name="load inputs")), only(sink.spans(name="store result"))
    assert query["parentSpanId"] == mutation["parentSpanId"] == action["spanId"]
    assert query["attributes"]["operation"] == "query" and mutation["attributes"]["operation"] == "mutation"
    assert len(sink.of_type("run:start")) == 1


def test_every_segment_numbers_its_records_from_one(sink, celery_test_app):
    celery_test_app.parent.delay({"topic": "x"}).get(timeout=10)
    celery_test_app.parent_of_failing.delay({"topic": "y"}).get(timeout=10)
    wait_span(sink, "leaf")
    wait_span(sink, "fails on purpose")
    assert_segment_sequences(sink.records)
