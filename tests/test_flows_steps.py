"""Steps replay instead of re-running; retries, fallbacks and the determinism checks."""

from __future__ import annotations

from cruxcelery import FlowCompleted, FlowFailed
from tests.app_flows import counters as redis_counters
from tests.app_flows import counting, duplicate, reordering, retrying_flow
from tests.flowhelpers import signal_and_pass, wait_status


def test_across_three_resumes_a_step_runs_exactly_once(worker):
    flow_id = counting.start({})
    for name in ("a", "b", "c"):
        signal_and_pass(counting, flow_id, name)
    assert counting.result(flow_id, timeout_s=15) == FlowCompleted(flow_id=flow_id, output=1)


def test_a_step_retries_with_backoff_then_a_fallback_takes_over(worker, sink):
    flow_id = retrying_flow.start({"fail_times": 2})
    result = retrying_flow.result(flow_id, timeout_s=30)
    assert result == FlowCompleted(flow_id=flow_id, output={"flaky": "flaky ok", "doomed": "fallback used"})
    flaky = [s for s in sink.spans(name="flaky") if s["flowId"] == flow_id]
    assert [s["attributes"]["attempt"] for s in flaky] == [1, 2, 3]
    assert [sink.span_end(s["spanId"])["status"] for s in flaky] == ["error", "error", "ok"]
    doomed = [s for s in sink.spans(name="doomed") if s["flowId"] == flow_id]
    assert [s["attributes"].get("fallback", False) for s in doomed][-1] is True
    assert len(sink.spans(name="always fails")) == 2, "two durable child attempts before the fallback"


def test_duplicate_step_labels_fail_the_flow_with_a_clear_error(worker):
    flow_id = duplicate.start({})
    result = duplicate.result(flow_id, timeout_s=15)
    assert isinstance(result, FlowFailed)
    assert "uses the step label 'same' twice" in result.error.message


def test_reordered_steps_on_replay_fail_with_a_determinism_error(worker):
    flow_id = reordering.start({})
    wait_status(reordering, flow_id, "suspended")
    redis_counters.incr(f"crux-test:count:{flow_id}:swapped")
    reordering.signal(flow_id, "go", None)
    result = reordering.result(flow_id, timeout_s=15)
    assert isinstance(result, FlowFailed) and result.error.name == "FlowDeterminismError"
    assert "the flow's code changed" in result.error.message
