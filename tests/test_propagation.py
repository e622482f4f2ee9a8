"""The envelope survives every way Celery publishes: delay, chain, group, chord, retry, send_task."""

from __future__ import annotations

from tests.helpers import only, wait_span


def _runs_of(sink, name, count=1):
    return {s["runId"] for s in wait_span(sink, name, count)}


def _origin(sink):
    return only(sink.spans(name="propagation"))


def test_delay_inside_an_action_keeps_the_run(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "delay"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    origin = _origin(sink)
    assert leaf["runId"] == origin["runId"] and leaf["parentSpanId"] == origin["spanId"]


def test_chain_links_stay_in_the_run(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "chain"}).get(timeout=10)
    leaf, echo = wait_span(sink, "leaf")[0], wait_span(sink, "echo")[0]
    assert leaf["runId"] == echo["runId"] == _origin(sink)["runId"]
    assert echo["parentSpanId"] == leaf["spanId"], "the next link is published inside the previous one"


def test_group_members_stay_in_the_run(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "group"}).get(timeout=10)
    assert _runs_of(sink, "leaf", 2) == {_origin(sink)["runId"]}


def test_chord_body_stays_in_the_run(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "chord"}).get(timeout=10)
    collect = wait_span(sink, "collect")[0]
    assert _runs_of(sink, "leaf", 2) == {collect["runId"]} == {_origin(sink)["runId"]}
    assert collect["parentSpanId"] in {s["spanId"] for s in sink.spans(name="leaf")}


def test_send_task_by_name_keeps_the_run(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "send_task"}).get(timeout=10)
    assert _runs_of(sink, "leaf") == {_origin(sink)["runId"]}


def test_plain_celery_task_restores_the_context_and_acknowledges_its_boundary(sink, celery_test_app):
    celery_test_app.propagation.delay({"topic": "plain"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    boundary = only(sink.spans(name="call plain"))
    assert leaf["runId"] == _origin(sink)["runId"] and leaf["parentSpanId"] == boundary["spanId"]
    assert sink.wait_for(lambda s: s.span_end(boundary["spanId"]))
    names = [e["name"] for e in sink.events(span_id=boundary["spanId"])]
    assert names[-1] == "runtime.celery.boundary.completed"


def test_retry_continues_the_run_in_a_new_segment(sink, celery_test_app):
    result = celery_test_app.retrying.delay({"topic": "r", "depth": 2}).get(timeout=15)
    attempts = wait_span(sink, "retrying", 3)
    assert result["attempts"] == 3
    assert {a["runId"] for a in attempts} == {result["runId"]}
    assert len({a["segmentId"] for a in attempts}) == 3
    assert [r["reason"] for r in sink.of_type("run:suspend")] == ["retry", "retry"]
    resumes = sink.of_type("run:resume")
    assert [r["previousSegmentId"] for r in resumes] == [a["segmentId"] for a in attempts[:2]]
    ends = sink.of_type("run:end")
    assert len(ends) == 1 and ends[0]["status"] == "ok"
    assert len(sink.of_type("run:start")) == 1


def test_retried_child_attempts_share_their_boundary(sink, celery_test_app):
    celery_test_app.parent_of_retrying.delay({"topic": "r", "depth": 1}).get(timeout=15)
    attempts = wait_span(sink, "retrying", 2)
    boundary = only(sink.spans(name="call retrying child"))
    assert {a["parentSpanId"] for a in attempts} == {boundary["spanId"]}
    assert sink.wait_for(lambda s: s.span_end(boundary["spanId"]))
    names = [e["name"] for e in sink.events(span_id=boundary["spanId"])]
    assert names.count("runtime.celery.boundary.received") == 2
    assert names.count("runtime.celery.boundary.completed") == 1
