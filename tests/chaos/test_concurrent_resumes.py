"""50 concurrent resumes of one flow, three times over, on a prefork worker with 4 processes: the
same flow task delivered 50 times while the first step runs, then 50 threads signalling the
suspended flow at once (twice: it waits twice). Every step runs once: none is re-run after being
recorded, whatever the number of executions that raced for the flow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from cruxcelery import FlowNotWaiting

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(120)]

RESUMES = 50


def _all_at_once(action: Callable[[int], None]) -> dict[str, int]:
    """Run ``action(i)`` in RESUMES threads released together; count how each ended."""
    barrier = threading.Barrier(RESUMES)
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            action(i)
            outcome = "ok"
        except FlowNotWaiting:
            outcome = "flow finished"
        except Exception as exc:  # anything else fails the test below
            outcome = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RESUMES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _wait_for(handle, flow_id: str, statuses: set[str], worker, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while handle.status(flow_id).status not in statuses:
        assert time.monotonic() < deadline, (handle.snapshot(flow_id), worker.log()[-3000:])
        time.sleep(0.05)


def test_fifty_concurrent_resumes_of_one_flow_run_each_step_once(db2_app, db2_worker):
    handle = db2_app.racy
    flow_id = handle.start({"step_s": 1.0})
    _wait_for(handle, flow_id, {"running", "suspended"}, db2_worker)

    # the same flow task delivered 50 times while step "a" runs
    deliveries = _all_at_once(lambda i: handle.task.apply_async(kwargs={"flow_id": flow_id, "reason": "recover"}))
    _wait_for(handle, flow_id, {"suspended"}, db2_worker)
    assert handle.snapshot(flow_id).waiting.occurrence == 0

    # 50 signals at once: the first wait takes one, the second wait (after step "b") another
    signals = _all_at_once(lambda i: handle.signal(flow_id, "go", {"ok": True}, signal_id=f"go-{i}"))
    result = handle.result(flow_id, timeout_s=60)
    assert result is not None and result.status == "completed", (result, db2_worker.log()[-3000:])

    # and 50 more resumes of the finished flow: nothing runs
    late = _all_at_once(lambda i: handle.task.apply_async(kwargs={"flow_id": flow_id, "reason": "recover"}))
    late_signals = _all_at_once(lambda i: handle.signal(flow_id, "go", {"ok": True}))
    time.sleep(1.0)

    snapshot = handle.snapshot(flow_id)
    runs = {step: db2_app.counters.count(flow_id, step) for step in ("a", "b", "c")}
    rerun = sum(count - 1 for count in runs.values())
    print(f"\n{RESUMES} concurrent deliveries of the flow task, {RESUMES} concurrent signals, then "
          f"{RESUMES} of each on the finished flow: steps run {runs}; steps re-run after being recorded: {rerun}")
    assert deliveries == {"ok": RESUMES} and late == {"ok": RESUMES}
    assert set(signals) <= {"ok", "flow finished"} and signals.get("ok", 0) >= 2, signals
    assert late_signals == {"flow finished": RESUMES}
    assert rerun == 0 and runs == {"a": 1, "b": 1, "c": 1}
    assert result.output == {"a": 1, "b": 1, "c": 1}
    assert set(snapshot.completed_steps) == {"a", "b", "c"}
    assert all(step.attempts == 1 for step in snapshot.completed_steps.values())
    assert db2_app.crux.flows.store.signals.pending_count(flow_id, "go") == 0, "leftover signals are deleted"
