"""Waiting on flows from tests."""

from __future__ import annotations

import time
from typing import Any


def wait_status(handle: Any, flow_id: str, *statuses: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    summary = handle.status(flow_id)
    while summary.status not in statuses and time.monotonic() < deadline:
        time.sleep(0.02)
        summary = handle.status(flow_id)
    assert summary.status in statuses, f"{flow_id} is {summary.status}, wanted {statuses}"
    return summary


def signal_and_pass(handle: Any, flow_id: str, name: str, payload: Any = None, timeout_s: float = 15.0) -> Any:
    """Signal the wait ``name`` and wait until the flow has moved past it."""
    wait_status(handle, flow_id, "suspended", timeout_s=timeout_s)
    assert handle.status(flow_id).suspended_at == name
    handle.signal(flow_id, name, payload)
    deadline = time.monotonic() + timeout_s
    summary = handle.status(flow_id)
    while (summary.status != "suspended" or summary.suspended_at == name) and summary.status not in (
            "completed", "failed", "cancelled", "expired") and time.monotonic() < deadline:
        time.sleep(0.02)
        summary = handle.status(flow_id)
    return summary
