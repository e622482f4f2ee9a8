"""A flow that really runs (an in-thread worker): suspended, signalled from the CLI, failed in a
durable child, shown with its error, retried from the CLI to completion without re-running the
steps it had recorded."""

from __future__ import annotations

import time
from typing import Any

from cruxcelery import FlowNotRetryable, retry_flow
from tests.cli import cli_app


def wait_status(flow_id: str, status: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cli_app.review.status(flow_id).status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"flow {flow_id} is {cli_app.review.status(flow_id).status}, not {status}")


def test_signal_fail_show_retry_complete(cli: Any, cli_worker: Any) -> None:
    cli_app.FAILING.add("d-retry")
    flow_id = cli_app.review.start({"draft_id": "d-retry"})
    wait_status(flow_id, "suspended")

    sent = cli("flows", "signal", flow_id, "approval", '{"approved": true, "note": "ship it"}')
    assert sent.code == 0, sent.err
    wait_status(flow_id, "failed")
    shown = cli("flows", "show", flow_id).out
    assert "error: StepFailed: step 'publish' failed" in shown and "the CMS refused draft d-retry" in shown
    assert "1. plan:" in shown and "publish" not in shown.split("error:")[0].split("steps:")[1]

    cli_app.FAILING.discard("d-retry")
    retried = cli("flows", "retry", flow_id)
    assert retried.code == 0, retried.err
    assert f"flow {flow_id} is pending again" in retried.out
    wait_status(flow_id, "completed")
    snap = cli_app.review.snapshot(flow_id)
    assert snap.output == {"published": "d-retry"} and snap.error is None
    assert list(snap.completed_steps) == ["plan", "publish"]
    assert [flow_id] == cli_app.PLANNED  # the recorded step was replayed, not run again
    assert cli_app.crux.flows.store.redis.ttl(cli_app.crux.flows.store.keys.flow(flow_id)) > 0  # retired again

    again = cli("flows", "retry", flow_id)
    assert again.code == 1 and "is completed; only a failed flow can be retried" in again.err


def test_retry_flow_api(cli_worker: Any) -> None:
    cli_app.FAILING.add("d-api")
    flow_id = cli_app.review.start({"draft_id": "d-api"})
    wait_status(flow_id, "suspended")
    cli_app.review.signal(flow_id, "approval", {"approved": True})
    wait_status(flow_id, "failed")
    cli_app.FAILING.discard("d-api")
    summary = retry_flow(flow_id, crux=cli_app.crux)
    assert summary.status == "pending"
    wait_status(flow_id, "completed")
    try:
        retry_flow(flow_id, crux=cli_app.crux)
    except FlowNotRetryable as exc:
        assert exc.status == "completed"
    else:
        raise AssertionError("a completed flow was retried")
