"""A flow is one run across its segments; replayed steps emit nothing; child flows are child runs."""

from __future__ import annotations

from cruxcelery import FlowCompleted, FlowSuspendedResult
from tests.app_flows import count, counting, parent_flow, writer
from tests.flowhelpers import signal_and_pass, wait_status
from tests.helpers import assert_segment_sequences, only


def _flow_records(sink, flow_id):
    run_ids = {r["runId"] for r in sink.records if r.get("flowId") == flow_id}
    return [r for r in sink.records if r["runId"] in run_ids]


def test_a_flow_in_several_segments_is_one_run_linked_by_resumes(worker, sink):
    flow_id = counting.start({})
    for name in ("a", "b"):
        signal_and_pass(counting, flow_id, name)
    records = _flow_records(sink, flow_id)
    assert len({r["runId"] for r in records}) == 1
    segments = list(dict.fromkeys(r["segmentId"] for r in records))
    assert len(segments) == 3
    resumes = [r for r in records if r["type"] == "run:resume"]
    assert [r["previousSegmentId"] for r in resumes] == segments[:2]
    assert [r["segmentId"] for r in resumes] == segments[1:]
    assert len([r for r in records if r["type"] == "run:suspend"]) == 3
    assert len([r for r in records if r["type"] == "span:start" and r["primitive"] == "flow.run"]) == 3
    assert_segment_sequences(records)


def test_replayed_steps_emit_no_span(worker, sink):
    flow_id = counting.start({})
    for name in ("a", "b", "c"):
        signal_and_pass(counting, flow_id, name)
    assert counting.result(flow_id, timeout_s=15).status == "completed"
    steps = [r for r in _flow_records(sink, flow_id) if r["type"] == "span:start" and r["primitive"] == "flow.step"]
    assert len(steps) == 1 and steps[0]["attributes"]["stepLabel"] == "count"
    output = only([r for r in sink.artifacts(steps[0]["spanId"]) if r["kind"] == "output"])
    assert output["preview"] == 1


def test_a_suspension_records_a_suspension_span_then_run_suspend(worker, sink):
    flow_id = writer.start({"draft_id": "records"})
    wait_status(writer, flow_id, "suspended")
    records = _flow_records(sink, flow_id)
    suspension = only([r for r in records if r["type"] == "span:start" and r["primitive"] == "flow.suspension"])
    assert suspension["attributes"]["suspendPoint"] == "approval" and "timeout" in suspension["attributes"]
    assert sink.span_end(suspension["spanId"])["status"] == "suspended"
    kinds = [r["type"] for r in records]
    assert kinds.index("run:suspend") > kinds.index("span:start")
    plan_child = only([r for r in records if r["type"] == "span:start" and r["name"] == "plan draft"])
    step = only([r for r in records if r["type"] == "span:start" and r["primitive"] == "flow.step"
                 and r["name"] == "plan" and sink.span_end(r["spanId"])["status"] == "suspended"])
    assert plan_child["parentSpanId"] == step["spanId"], "the durable child hangs under its step"


def test_wait_until_with_a_nested_child_flow(worker, sink):
    flow_id = parent_flow.start({"label": "p1"})
    assert parent_flow.result(flow_id, timeout_s=20) == FlowCompleted(flow_id=flow_id, output="child of p1")
    parent_run = only([r for r in sink.of_type("run:start") if r["name"] == "t-parent"
                       and r["attributes"].get("flowId") == flow_id])
    child_run = only([r for r in sink.of_type("run:start") if r["name"] == "t-child"
                      and r.get("parentRunId") == parent_run["runId"]])
    assert child_run["operationId"] == parent_run["operationId"]
    assert child_run["traceId"] == parent_run["traceId"] and child_run["triggeredBySpanId"]


def test_run_inline_runs_in_the_caller_until_it_suspends(worker):
    result = counting.run_inline({"label": "inline"})
    assert isinstance(result, FlowSuspendedResult) and result.suspended_at == "a"
    assert count(result.flow_id, "count") == 1, "the step ran here, in the caller"
    for name in ("a", "b", "c"):
        signal_and_pass(counting, result.flow_id, name)
    assert counting.result(result.flow_id, timeout_s=15) == FlowCompleted(flow_id=result.flow_id, output=1)
