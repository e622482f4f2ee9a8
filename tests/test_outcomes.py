"""How an execution ended, as Celery decides it: autoretry, replace and reject are classified once,
for spans, runs, boundaries and durable children alike."""

from __future__ import annotations

import time
import uuid

from cruxcelery import FlowCompleted
from tests.app_flows import flaky_child_flow
from tests.helpers import wait_span


def _run_ends(sink, run_id, timeout_s=10.0):
    sink.wait_for(lambda s: any(r["type"] == "run:end" for r in s.run_records(run_id)), timeout_s)
    time.sleep(0.3)  # a second run:end, if any, would arrive now
    return [r for r in sink.run_records(run_id) if r["type"] == "run:end"]


def test_a_durable_child_that_autoretries_reports_its_final_success(worker, sink):
    flow_id = flaky_child_flow.start({"fail_times": 1})

    result = flaky_child_flow.result(flow_id, timeout_s=20)

    assert result == FlowCompleted(flow_id=flow_id, output={"attempts": 2})


def test_an_autoretried_action_suspends_its_run_until_the_attempt_that_succeeds(sink, celery_test_app):
    key = uuid.uuid4().hex
    assert celery_test_app.flaky_auto.delay({"topic": key, "depth": 2}).get(timeout=15) == {"attempts": 3}
    attempts = wait_span(sink, "flaky autoretry", 3)
    run_id = attempts[0]["runId"]

    assert [r["reason"] for r in sink.of_type("run:suspend") if r["runId"] == run_id] == ["retry", "retry"]
    ends = _run_ends(sink, run_id)
    assert [e["status"] for e in ends] == ["ok"]


def test_a_replaced_task_ends_its_span_ok_and_the_replacement_ends_the_run_once(sink, celery_test_app):
    celery_test_app.replacing.delay({"topic": "swap"})
    replaced = wait_span(sink, "replacing")[0]
    leaf = wait_span(sink, "leaf")[0]

    assert sink.span_end(replaced["spanId"])["status"] == "ok"
    assert [e["attributes"]["replacedBy"] for e in sink.events("runtime.celery.replaced")]
    assert leaf["runId"] == replaced["runId"], "the replacement continues the run"
    ends = _run_ends(sink, replaced["runId"])
    assert [e["status"] for e in ends] == ["ok"]


def test_a_task_rejected_without_requeue_ends_its_run_as_an_error(sink, celery_test_app):
    celery_test_app.rejecting.delay({"topic": "no"})
    span = wait_span(sink, "rejecting")[0]

    ends = _run_ends(sink, span["runId"])
    assert [e["status"] for e in ends] == ["error"]
    assert not [r for r in sink.of_type("run:suspend") if r["runId"] == span["runId"]]
