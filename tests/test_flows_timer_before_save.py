"""A suspending execution arms its timers before the save that suspends the flow (so a crash
between them loses no timer). A timer that falls due in between, while that execution still holds
the flow's lease, waits for the save instead of being dropped as stale: dropped, it left the flow
suspended for good (found by the fault harness: a stalled wake-up publish)."""

from __future__ import annotations

import uuid

from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.timers import Timer
from tests.app import crux


def _running_flow_with_its_lease() -> tuple[FlowSnapshot, str]:
    store = crux.flows.store
    flow_id = f"early-{uuid.uuid4().hex[:10]}"
    store.snapshots.create(FlowSnapshot(flow_id=flow_id, name="t-counting", input={}))
    running = store.snapshots.save(store.snapshots.require(flow_id).model_copy(update={"status": "running"}),
                                   0, "pending")
    token = store.leases.acquire_or_request_wake(flow_id, 30)
    assert token is not None
    return running, token


def _timers_of(flow_id: str) -> list[Timer]:
    return [t for t in crux.flows.store.timers.due(2**62, limit=1000) if t.flow_id == flow_id]


def test_a_timer_due_before_the_save_that_arms_it_waits_for_that_save(celery_test_app):
    store = crux.flows.store
    running, token = _running_flow_with_its_lease()
    timer = Timer(flow_id=running.flow_id, kind="recheck", name="a#0", version=running.version + 1, due_ms=1)
    store.timers.add(timer)

    crux.flows.timers.sweep()
    assert [t.version for t in _timers_of(running.flow_id)] == [timer.version], "the timer was dropped"

    store.leases.release(running.flow_id, token)
    crux.flows.delete(running.flow_id)


def test_a_timer_for_a_version_whose_writer_is_gone_is_dropped(celery_test_app):
    store = crux.flows.store
    running, token = _running_flow_with_its_lease()
    store.leases.release(running.flow_id, token)
    store.timers.add(Timer(flow_id=running.flow_id, kind="recheck", name="a#0", version=running.version + 1,
                           due_ms=1))

    crux.flows.timers.sweep()

    assert _timers_of(running.flow_id) == []
    crux.flows.delete(running.flow_id)
