"""Writes that lose, or never happen, must not leave a flow in a state nobody moves on (issue 17):
a stale execution's lost final write, a signal taken before a save that failed, retention that
leaves index entries behind, a release that drops another holder's lease index entry."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.result import AsyncResult
from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowCompleted, FlowScope, list_flows, purge_flows
from cruxcelery.flows.manager import first_task_id
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store import scripts
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys
from tests.app import REDIS, app, crux
from tests.app_flows import bump, count, resumable
from tests.celery_apps import json_app
from tests.flowhelpers import wait_status


class Gated(BaseModel):
    fail: bool = False


stale = crux.flow("t-lw-stale", args=Gated)


def _wait_for_gate(flow_id: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while count(flow_id, "gate") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)


@stale.handler
def run_stale(scope: FlowScope[Gated], args: Gated, ctx: ActionContext) -> str:
    scope.step("first", lambda: "recorded")  # the flow is saved ``running``
    if bump(scope.flow_id, "gated") == 1:
        _wait_for_gate(scope.flow_id)  # the first execution stalls here (a GC pause, a VM stall)
        if args.fail:
            raise RuntimeError("the stale execution's failure")
    return "done"


def _take_over(flow_id: str) -> None:
    """What another execution does once the stalled one's lease lapsed: it takes the lease and
    writes the flow (here by hand, so the test decides when)."""
    store = crux.flows.store
    store.redis.set(store.keys.lease(flow_id), "another-execution", px=120_000)
    snap = store.snapshots.require(flow_id)
    store.snapshots.save(snap, snap.version, snap.status)


def _stale_execution_ends(flow_id: str) -> dict[str, Any]:
    """Let the stalled first execution go on, and wait for its task's result."""
    bump(flow_id, "gate")
    result: dict[str, Any] = AsyncResult(first_task_id(flow_id), app=app).get(timeout=30, propagate=False)
    return result


def _run_ends(sink: Any, run_id: str) -> list[dict[str, Any]]:
    return [r for r in sink.of_type("run:end") if r["runId"] == run_id]


def test_an_execution_whose_final_write_lost_leaves_the_live_flow_unretired(worker, sink):
    store = crux.flows.store
    flow_id = stale.start({})
    _wait_until(lambda: count(flow_id, "gated") == 1)
    _take_over(flow_id)

    result = _stale_execution_ends(flow_id)

    assert result["outcome"] == "lease_lost"
    assert stale.status(flow_id).status == "running", "the flow is live in the other execution"
    assert store.redis.pttl(store.keys.flow(flow_id)) == -1, "its keys do not expire"
    assert store.redis.zscore(store.keys.leases(), flow_id) is not None, "the sweeper still watches it"
    assert _run_ends(sink, result["runId"]) == []
    store.redis.delete(store.keys.lease(flow_id))  # the other execution ends: the flow is resumed
    crux.flows.resume(flow_id, "lease_lapsed")
    assert stale.result(flow_id, timeout_s=20) == FlowCompleted(flow_id=flow_id, output="done")
    assert sink.wait_for(lambda s: len(_run_ends(s, result["runId"])) == 1)


def test_an_execution_whose_failure_write_lost_records_no_run_end_for_the_live_run(worker, sink):
    flow_id = stale.start({"fail": True})
    _wait_until(lambda: count(flow_id, "gated") == 1)
    _take_over(flow_id)

    result = _stale_execution_ends(flow_id)

    assert result["outcome"] == "lease_lost"
    assert stale.status(flow_id).status == "running"
    time.sleep(0.3)  # records flushed by the ended execution would be in by now
    assert _run_ends(sink, result["runId"]) == [], "no run:end error for a run that goes on"
    stale.cancel(flow_id)


class _FailSaveAfterTake:
    """A Redis client fault: the snapshot save right after this flow's signal was taken raises a
    connection error, once (a Redis error or a crash between the two writes)."""

    def __init__(self, client: redis.Redis, flow_id: str) -> None:
        self._call = client.execute_command
        self._flow_id = flow_id
        self._take = hashlib.sha1(scripts.TAKE_SIGNAL.encode()).hexdigest()
        self._save = hashlib.sha1(scripts.SAVE.encode()).hexdigest()
        self._taken = False
        self.fired = threading.Event()

    def __call__(self, *args: Any, **options: Any) -> Any:
        command, sha = (str(a) for a in (*args, "", "")[:2])
        mine = command.upper() == "EVALSHA" and self._flow_id in str(args[3:4])  # its first key
        if mine and sha == self._take:
            self._taken = True
        elif mine and sha == self._save and self._taken and not self.fired.is_set():
            self.fired.set()
            raise redis.ConnectionError("injected: Redis went away after the signal was taken")
        return self._call(*args, **options)


def test_a_signal_taken_before_a_failed_running_save_is_delivered_once_by_the_next_execution(
        worker, monkeypatch):
    store = crux.flows.store
    flow_id = resumable.start({})
    wait_status(resumable, flow_id, "suspended")
    fault = _FailSaveAfterTake(store.redis, flow_id)
    monkeypatch.setattr(store.redis, "execute_command", fault)

    resumable.signal(flow_id, "go", {"topic": "once"})
    assert fault.fired.wait(15)
    monkeypatch.undo()
    time.sleep(0.5)  # the interrupted execution stops, its lease left to lapse
    store.redis.delete(store.keys.lease(flow_id))  # it lapsed: the sweeper resumes the flow
    crux.flows.resume(flow_id, "lease_lapsed")

    assert resumable.result(flow_id, timeout_s=20) == FlowCompleted(flow_id=flow_id, output="once")
    assert count(flow_id, "after-go") == 1
    assert store.signals.pending_count(flow_id, "go") == 0
    assert list(store.signals.delivered(flow_id).values()) == [{"topic": "once", "depth": 0}]


# -- retention and the lease index: store level ---------------------------------------------------

@pytest.fixture()
def lone_crux(make_crux: Any) -> Iterator[Crux]:
    """A Crux of its own key prefix (its indexes hold only this test's flows); no worker."""
    prefix = f"crux-lw-{uuid.uuid4().hex[:10]}"
    made: Crux = make_crux(json_app("crux_lw", REDIS, prefix),
                           CruxSettings(redis_url=REDIS, key_prefix=prefix, telemetry_enabled=False))
    yield made
    client = made.flows.store.redis
    doomed = list(client.scan_iter(match=f"{prefix}:*", count=1000))  # the test's cleanup only
    if doomed:
        client.delete(*doomed)


def _finished(store: RedisFlowStore, name: str, at_ms: int) -> FlowSnapshot:
    """A completed flow stored with its indexes, its status last changed at ``at_ms``."""
    snap = FlowSnapshot.model_validate({"flow_id": f"flow_{uuid.uuid4().hex[:12]}", "name": name,
                                        "status": "completed", "created_at": at_ms, "updated_at": at_ms})
    store.snapshots.create(snap)
    return snap


def _index_sizes(store: RedisFlowStore, name: str) -> dict[str, int]:
    keys = store.keys
    return {key: int(store.redis.zcard(key))
            for key in (keys.status_index("completed"), keys.name_index(name), keys.all_index())}


def _wait_until(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


def test_purge_deletes_older_finished_flows_behind_flows_whose_retention_ended(lone_crux):
    store = lone_crux.flows.store
    expired = [_finished(store, "report", 1_000_000 + i) for i in range(3)]
    kept = [_finished(store, "report", 2_000_000 + i) for i in range(2)]
    for snap in expired:
        store.retention.retire(snap, [], retention_s=0.05)
    _wait_until(lambda: not any(store.snapshots.exists(s.flow_id) for s in expired))

    deleted = purge_flows(limit=2, crux=lone_crux)

    assert deleted == len(kept)
    assert list_flows(crux=lone_crux) == ([], None)
    assert set(_index_sizes(store, "report").values()) == {0}
    assert store.redis.zcard(store.keys.retired()) == 0, "nothing left to forget"


def test_a_finished_flows_index_entries_go_when_its_keys_expire(lone_crux):
    store = lone_crux.flows.store
    first = _finished(store, "report", 1_000_000)
    store.retention.retire(first, [], retention_s=0.05)
    _wait_until(lambda: not store.snapshots.exists(first.flow_id))

    store.retention.retire(_finished(store, "report", 2_000_000), [], retention_s=3600)

    assert set(_index_sizes(store, "report").values()) == {1}, "only the flow that is still kept"


def test_purge_moves_past_index_entries_of_flows_that_vanished(lone_crux):
    store = lone_crux.flows.store
    vanished = [_finished(store, "report", 1_000_000 + i) for i in range(3)]
    kept = [_finished(store, "report", 2_000_000 + i) for i in range(2)]
    for snap in vanished:  # gone without a retire record (retired by an older version, say)
        store.redis.delete(store.keys.flow(snap.flow_id))

    deleted = purge_flows(limit=2, crux=lone_crux)

    assert deleted == len(kept)
    assert not any(store.snapshots.exists(s.flow_id) for s in kept)
    assert store.redis.zcard(store.keys.status_index("completed")) == 0
    assert store.redis.zcard(store.keys.all_index()) == 0


def test_releasing_a_lapsed_lease_keeps_the_new_holders_lease_index_entry():
    client = redis.Redis.from_url(REDIS)
    store = RedisFlowStore(client, FlowKeys(f"crux-lw-{uuid.uuid4().hex[:10]}"))
    flow_id = f"flow_{uuid.uuid4().hex[:12]}"
    try:
        stalled = store.leases.acquire_or_request_wake(flow_id, ttl_s=0.05)
        assert stalled is not None
        time.sleep(0.15)  # its lease lapsed
        holder = store.leases.acquire_or_request_wake(flow_id, ttl_s=30)
        assert holder is not None

        store.leases.release(flow_id, stalled)

        assert store.redis.zscore(store.keys.leases(), flow_id) is not None
        assert store.leases.held([flow_id]) == [True]
    finally:
        client.delete(store.keys.leases(), store.keys.lease(flow_id))
        client.close()
