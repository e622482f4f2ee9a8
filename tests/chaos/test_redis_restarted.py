"""Redis (broker and flow store, AOF on) killed and restarted while flows run steps and wait on
signals: every flow completes, none is left ``pending``, and calls while it is down raise
``StoreUnavailable`` at once. The worker is supervised: kombu 5.7 can kill it in
``restore_unacked_once`` when Redis restarts with ``acks_late`` messages in flight."""

from __future__ import annotations

import time

import pytest

from cruxcelery import StoreUnavailable
from tests.workers import Supervised

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(300)]

FLOWS = 14
LEASE_S = 5.0


def test_flows_survive_a_redis_restart_mid_run(tmp_path, chaos_app, chaos_redis, monkeypatch):
    monkeypatch.setenv("CRUX_FLOW_LEASE_S", str(LEASE_S))
    env = {"CRUX_FLOW_LEASE_S": str(LEASE_S), "CRUX_CHAOS_REDIS": chaos_app.REDIS}
    with Supervised(tmp_path, app="tests.chaos_app", queue=chaos_app.QUEUE, concurrency=4, env=env) as worker:
        flow_ids = [chaos_app.steady.start({"sleep_s": 0.2 if i % 2 else 3.0}) for i in range(FLOWS)]
        deadline = time.monotonic() + 30
        while not any(chaos_app.steady.status(f).status == "suspended" for f in flow_ids):
            assert time.monotonic() < deadline, worker.logs()
            time.sleep(0.1)

        chaos_redis.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            chaos_app.steady.status(flow_ids[0])
        refused_in = time.monotonic() - started
        time.sleep(2.0)
        chaos_redis.start()
        print(f"\nwhile Redis was down, status() raised StoreUnavailable in {refused_in * 1000:.0f} ms")

        deadline = time.monotonic() + 120
        while (behind := [f for f in flow_ids if _status(chaos_app, f) != "suspended"]):
            assert time.monotonic() < deadline, (
                {f: _status(chaos_app, f) for f in behind}, f"restarts: {worker.restarts}", worker.logs())
            time.sleep(0.5)
        for flow_id in flow_ids:
            chaos_app.steady.signal(flow_id, "go", {"ok": True})
        for flow_id in flow_ids:
            result = chaos_app.steady.result(flow_id, timeout_s=60)
            assert result is not None and result.status == "completed", (flow_id, result, worker.logs())
        print(f"all {FLOWS} flows completed; the worker was restarted {worker.restarts} time(s)")
    assert refused_in < 1.0
    assert all(chaos_app.counters.count(f, "finish") == 1 for f in flow_ids)


def _status(app, flow_id: str) -> str:
    try:
        return str(app.steady.status(flow_id).status)
    except StoreUnavailable:
        return "unreachable"
