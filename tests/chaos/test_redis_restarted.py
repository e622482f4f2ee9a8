"""Redis (broker and flow store) restarted while flows run steps, wait in the broker's queue
(``pending``) and wait on signals: every flow completes, none is left ``pending``, none is lost, and
calls while it is down raise ``StoreUnavailable`` at once. Two persistence set-ups:

- ``aof``: append-only file, fsync always; Redis is killed with SIGKILL (a crash);
- ``rdb``: no AOF, Redis's default snapshot points; Redis is stopped with SIGTERM (it saves its
  snapshot on the way down, as when a process manager restarts it). Without AOF a SIGKILL keeps
  nothing written since the last snapshot: no store can promise anything then.

The worker is supervised: kombu 5.7 can kill it in ``restore_unacked_once`` when Redis restarts
with ``acks_late`` messages in flight."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import redis

from cruxcelery import CruxSettings, FlowNotFound, StoreUnavailable
from tests.celery_apps import json_app
from tests.workers import Supervised

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(300)]

FLOWS = 14
LEASE_S = 5.0
RECOVERY_BOUND_S = 30.0


@pytest.fixture(params=["aof", "rdb"])
def persistence(request, chaos_redis):
    """The chaos Redis in the set-up under test (same port: the chaos app is bound to it), put
    back to AOF afterwards."""
    if request.param == "rdb":
        chaos_redis.stop()
        chaos_redis.aof, chaos_redis.rdb = False, True
        chaos_redis.start()
    yield request.param
    if request.param == "rdb":
        chaos_redis.stop()
        chaos_redis.aof, chaos_redis.rdb = True, False
        chaos_redis.start()


def test_flows_survive_a_redis_restart_mid_run(tmp_path, persistence, chaos_app, chaos_redis, monkeypatch):
    monkeypatch.setenv("CRUX_FLOW_LEASE_S", str(LEASE_S))
    env = {"CRUX_FLOW_LEASE_S": str(LEASE_S), "CRUX_CHAOS_REDIS": chaos_app.REDIS}
    with Supervised(tmp_path, app="tests.chaos_app", queue=chaos_app.QUEUE, concurrency=4, env=env) as worker:
        flow_ids = [chaos_app.steady.start({"sleep_s": 0.2 if i % 2 else 3.0}) for i in range(FLOWS)]
        deadline = time.monotonic() + 30
        while not any(chaos_app.steady.status(f).status == "suspended" for f in flow_ids):
            assert time.monotonic() < deadline, worker.logs()
            time.sleep(0.1)

        at_restart = Counter(_status(chaos_app, f) for f in flow_ids)
        if persistence == "aof":
            chaos_redis.kill()
        else:
            chaos_redis.terminate()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            chaos_app.steady.status(flow_ids[0])
        refused_in = time.monotonic() - started
        time.sleep(2.0)
        chaos_redis.start()
        print(f"\n[{persistence}] flows at the restart: {dict(at_restart)}; while Redis was down, status() raised "
              f"StoreUnavailable in {refused_in * 1000:.0f} ms")

        deadline = time.monotonic() + 120
        while (behind := [f for f in flow_ids if _status(chaos_app, f) not in ("suspended", "lost")]):
            assert time.monotonic() < deadline, (
                {f: _status(chaos_app, f) for f in behind}, f"restarts: {worker.restarts}", worker.logs())
            time.sleep(0.5)
        suspended_in = time.monotonic() - started
        lost = [f for f in flow_ids if _status(chaos_app, f) == "lost"]
        for flow_id in set(flow_ids) - set(lost):
            chaos_app.steady.signal(flow_id, "go", {"ok": True})
        completed = 0
        for flow_id in set(flow_ids) - set(lost):
            result = chaos_app.steady.result(flow_id, timeout_s=60)
            completed += result is not None and result.status == "completed"
        stranded = sum(_status(chaos_app, f) == "pending" for f in flow_ids)
        print(f"[{persistence}] every flow back at its suspend point {suspended_in:.1f} s after Redis came back; "
              f"flows lost {len(lost)} of {FLOWS}; pending flows stranded {stranded}; "
              f"completed {completed} of {FLOWS}; the worker was restarted {worker.restarts} time(s)")
        assert not lost and stranded == 0 and completed == FLOWS, worker.logs()
    assert refused_in < 1.0
    # the claims of a worker that kombu crashed are re-published by its successor's sweeper, not
    # left to the lease index (two leases of the starting process: 60 s by default)
    assert suspended_in <= RECOVERY_BOUND_S, f"{suspended_in:.1f} s"
    assert all(chaos_app.counters.count(f, "finish") == 1 for f in flow_ids)


def _status(app, flow_id: str) -> str:
    try:
        return str(app.steady.status(flow_id).status)
    except StoreUnavailable:
        return "unreachable"
    except FlowNotFound:
        return "lost"


def test_a_worker_exiting_after_an_unrecoverable_error_leaves_its_claims_to_the_sweepers(make_crux):
    """Regression: kombu 5.7 can crash a worker in ``restore_unacked_once`` when Redis restarts
    under it (exit code 1, "Unrecoverable error"): the messages it had reserved are never requeued,
    they wait in the broker's unacked hash for the visibility timeout (an hour). Its shutdown hook
    used to drop its claims anyway, as after a warm shutdown, so those flows waited for the lease
    index (two leases after their start). Now only a clean exit drops them; after a failure they
    stay for another worker's sweeper, which re-publishes them at its next tick."""
    from celery import signals

    url = "redis://127.0.0.1:6379/2"
    app = json_app("crux_chaos_exit", url, "crux-chaos-exit")
    prefix = f"crux-exit-{uuid.uuid4().hex[:8]}"
    crux = make_crux(app, CruxSettings(redis_url=url, key_prefix=prefix, telemetry_enabled=False))
    store, worker_id = crux.flows.store, crux.flows.sweeper.worker_id
    message = {"name": "crux.flow.x", "args": [], "kwargs": {"flow_id": "flow_x", "reason": "start"}}
    kept = {}
    try:
        for exitcode in (1, 0, None):
            store.workers.heartbeat(worker_id)
            store.claims.claim("task-1", worker_id, message)
            signals.worker_shutdown.send(sender=_WorkController(app, exitcode))
            kept[exitcode] = "task-1" in store.claims.all()
            assert worker_id not in store.workers.live(0), "the worker is forgotten either way"
            store.claims.unclaim("task-1")
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert kept == {1: True, 0: False, None: False}


class _WorkController:
    """What Celery's ``worker_shutdown`` signal is sent by: the worker, its app and exit code
    (``None`` or 0 after a warm or cold shutdown, 1 after an unrecoverable error)."""

    def __init__(self, app, exitcode):
        self.app = app
        self.exitcode = exitcode
