"""The writer flow: plan (a durable child) -> approval (a typed suspend with a timeout) -> write."""

from __future__ import annotations

import contextlib

import pytest

from cruxcelery import (
    FlowCancelledResult,
    FlowCompleted,
    FlowExpiredResult,
    FlowNotFound,
    FlowNotWaiting,
    FlowSuspendedResult,
    IdempotencyConflict,
    InvalidFlowId,
    SignalRejected,
    signal_flow,
)
from tests.app_flows import count, resumable, writer
from tests.flowhelpers import wait_status


def _suspended_writer(**args):
    flow_id = writer.start({"draft_id": "d1", **args})
    wait_status(writer, flow_id, "suspended")
    return flow_id


def test_start_returns_at_once_with_a_pending_flow(worker):
    flow_id = writer.start({"draft_id": "d1"})
    assert writer.status(flow_id).status in ("pending", "running", "waiting", "suspended")


def test_start_leaves_the_writer_suspended_at_approval(worker):
    flow_id = _suspended_writer()
    assert writer.result(flow_id) == FlowSuspendedResult(flow_id=flow_id, suspended_at="approval")
    assert writer.status(flow_id).timeout_at is not None


def test_an_approving_signal_completes_the_flow_with_output(worker):
    flow_id = _suspended_writer()
    writer.signal(flow_id, "approval", {"approved": True, "feedback": "ship it"})
    result = writer.result(flow_id, timeout_s=15)
    assert isinstance(result, FlowCompleted)
    assert result.output == {"written": {"draft": "d1", "plan": "d1", "feedback": "ship it"}}


def test_a_rejecting_signal_cancels_the_flow(worker):
    flow_id = _suspended_writer()
    writer.signal(flow_id, "approval", {"approved": False, "feedback": "too long"})
    wait_status(writer, flow_id, "cancelled")
    assert writer.result(flow_id) == FlowCancelledResult(flow_id=flow_id, cancel_reason="rejected: too long")
    assert count(flow_id, "after-approval") == 0


def test_without_a_signal_the_flow_expires_and_on_expired_runs_once(worker):
    flow_id = _suspended_writer(timeout_s=2)
    wait_status(writer, flow_id, "expired", timeout_s=20)
    assert writer.result(flow_id) == FlowExpiredResult(flow_id=flow_id, suspended_at="approval")
    assert count(flow_id, "expired") == 1


def test_a_signal_sent_before_the_wait_is_delivered(worker):
    flow_id = writer.start({"draft_id": "early"})
    writer.signal(flow_id, "approval", {"approved": True})
    assert isinstance(writer.result(flow_id, timeout_s=15), FlowCompleted)


def test_an_invalid_payload_is_refused_and_nothing_is_stored(worker):
    flow_id = _suspended_writer()
    with pytest.raises(SignalRejected, match="approved"):
        writer.signal(flow_id, "approval", {"approved": "perhaps"})
    assert writer.status(flow_id).status == "suspended"
    writer.signal(flow_id, "approval", {"approved": True})
    assert writer.result(flow_id, timeout_s=15).output["written"]["feedback"] == ""


def test_an_undeclared_signal_is_refused(worker):
    flow_id = _suspended_writer()
    with pytest.raises(SignalRejected, match="declares no signal 'publish'"):
        writer.signal(flow_id, "publish", {})


def test_an_unknown_flow_gives_flow_not_found(worker):
    with pytest.raises(FlowNotFound):
        writer.signal("flow_doesnotexist", "approval", {"approved": True})
    with pytest.raises(FlowNotFound):
        writer.status("flow_doesnotexist")


def test_a_bad_flow_id_is_refused_before_it_touches_a_key(worker):
    with pytest.raises(InvalidFlowId):
        signal_flow("../etc/passwd", "approval", {})


def test_a_finished_flow_gives_flow_not_waiting(worker):
    flow_id = _suspended_writer()
    writer.signal(flow_id, "approval", {"approved": True})
    wait_status(writer, flow_id, "completed")
    with pytest.raises(FlowNotWaiting, match="completed"):
        writer.signal(flow_id, "approval", {"approved": True})


def test_a_second_signal_to_the_same_wait_is_not_delivered_twice(worker):
    flow_id = resumable.start({"label": "twice"})
    resumable.signal(flow_id, "go", {"topic": "first"})
    with contextlib.suppress(FlowNotWaiting):  # the flow may already have finished with the first
        resumable.signal(flow_id, "go", {"topic": "second"})
    assert resumable.result(flow_id, timeout_s=15).output == "first"
    assert count(flow_id, "after-go") == 1


def test_start_with_an_idempotency_key_returns_the_same_flow(worker):
    first = writer.start({"draft_id": "same"}, idempotency_key="req-42-" + __name__.replace(".", "-"))
    again = writer.start({"draft_id": "same"}, idempotency_key="req-42-" + __name__.replace(".", "-"))
    assert first == again


def test_start_with_a_known_idempotency_key_and_other_input_is_a_conflict(worker):
    key = "req-43-" + __name__.replace(".", "-")
    first = writer.start({"draft_id": "tenant-a"}, idempotency_key=key)
    with pytest.raises(IdempotencyConflict):
        writer.start({"draft_id": "tenant-b"}, idempotency_key=key)
    assert writer.start({"draft_id": "tenant-a"}, idempotency_key=key) == first
