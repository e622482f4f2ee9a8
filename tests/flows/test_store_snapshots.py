from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest

from cruxcelery.flows.errors import FlowError, FlowNotFound, InvalidFlowId, VersionConflict
from cruxcelery.flows.snapshot import ErrorInfo, FlowSnapshot, StepRecord, Waiting
from cruxcelery.flows.store.flow_store import RedisFlowStore
from tests.concurrency import race

Snap = Callable[..., FlowSnapshot]
StoreFactory = Callable[..., RedisFlowStore]


def _score(store: RedisFlowStore, key: str, member: str) -> float | None:
    value = store.redis.zscore(key, member)
    return None if value is None else float(value)


def test_create_writes_snapshot_and_every_index_entry(store: RedisFlowStore, snap: Snap) -> None:
    flow_id, created = store.snapshots.create(snap("f1", status="pending", updated_at=1_000))

    assert (flow_id, created) == ("f1", True)
    loaded = store.snapshots.require("f1")
    assert (loaded.flow_id, loaded.name, loaded.status, loaded.version) == ("f1", "writer", "pending", 0)
    keys = store.keys
    assert _score(store, keys.status_index("pending"), "f1") == 1_000
    assert _score(store, keys.name_index("writer"), "f1") == 1_000
    assert _score(store, keys.all_index(), "f1") == 1_000


def test_create_of_an_existing_flow_id_returns_false_and_leaves_it_alone(
    store: RedisFlowStore, snap: Snap
) -> None:
    store.snapshots.create(snap("f1", status="pending", updated_at=1_000, input={"a": 1}))

    again = store.snapshots.create(snap("f1", status="running", updated_at=2_000, input={"a": 2}))

    assert again == ("f1", False)
    loaded = store.snapshots.require("f1")
    assert (loaded.status, loaded.input) == ("pending", {"a": 1})
    assert store.redis.zscore(store.keys.status_index("running"), "f1") is None
    assert _score(store, store.keys.all_index(), "f1") == 1_000


def test_idempotency_key_first_creator_wins(store: RedisFlowStore, snap: Snap) -> None:
    assert store.snapshots.create(snap("f1"), idempotency_key="order:42") == ("f1", True)

    assert store.snapshots.create(snap("f2"), idempotency_key="order:42") == ("f1", False)
    assert store.snapshots.load("f2") is None
    assert store.snapshots.require("f1").idempotency_key == "order:42"
    # the key is scoped by flow name
    assert store.snapshots.create(snap("f3", name="other"), idempotency_key="order:42") == ("f3", True)


def test_idempotency_key_taken_from_the_snapshot(store: RedisFlowStore, snap: Snap) -> None:
    assert store.snapshots.create(snap("f1", idempotency_key="k1")) == ("f1", True)
    assert store.snapshots.create(snap("f2", idempotency_key="k1")) == ("f1", False)


def test_idempotency_key_race_has_one_winner(store: RedisFlowStore, snap: Snap) -> None:
    results = race(lambda i: store.snapshots.create(snap(f"f{i}"), idempotency_key="same"))

    winners = [flow_id for flow_id, created in results if created]
    assert len(winners) == 1
    assert {flow_id for flow_id, _ in results} == {winners[0]}
    assert store.redis.zcard(store.keys.all_index()) == 1


def test_save_bumps_version_and_updated_at(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", updated_at=1_000))
    current = store.snapshots.require("f1")

    saved = store.snapshots.save(current.model_copy(update={"status": "running"}), expected_version=0)

    assert saved.version == 1
    assert saved.updated_at > 1_000
    assert store.snapshots.require("f1") == saved


def test_save_with_a_stale_version_raises_version_conflict(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1"))
    first = store.snapshots.require("f1")
    store.snapshots.save(first.model_copy(update={"status": "running"}), expected_version=0)

    with pytest.raises(VersionConflict) as info:
        store.snapshots.save(first.model_copy(update={"status": "failed"}), expected_version=0)

    assert (info.value.expected, info.value.actual) == (0, 1)
    assert store.snapshots.require("f1").status == "running"
    assert store.redis.zscore(store.keys.status_index("failed"), "f1") is None


def test_save_moves_the_flow_between_status_indexes(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="pending"))
    current = store.snapshots.require("f1")

    saved = store.snapshots.save(current.model_copy(update={"status": "suspended"}), current.version)

    keys = store.keys
    assert store.redis.zscore(keys.status_index("pending"), "f1") is None
    assert _score(store, keys.status_index("suspended"), "f1") == saved.updated_at
    assert _score(store, keys.name_index("writer"), "f1") == saved.updated_at
    assert _score(store, keys.all_index(), "f1") == saved.updated_at
    members = [store.redis.zscore(keys.status_index(s), "f1") for s in ("pending", "running", "waiting")]
    assert members == [None, None, None]


def test_save_of_an_unknown_flow_raises_flow_not_found(store: RedisFlowStore, snap: Snap) -> None:
    with pytest.raises(FlowNotFound):
        store.snapshots.save(snap("ghost"), expected_version=0)
    assert store.redis.zcard(store.keys.all_index()) == 0


def test_save_refuses_to_rename_a_flow(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", name="writer"))

    with pytest.raises(FlowError, match="cannot rename"):
        store.snapshots.save(snap("f1", name="reader"), expected_version=0)


def test_require_of_an_unknown_flow_raises_flow_not_found(store: RedisFlowStore) -> None:
    assert store.snapshots.load("ghost") is None
    with pytest.raises(FlowNotFound) as info:
        store.snapshots.require("ghost")
    assert isinstance(info.value, KeyError)
    assert "ghost" in str(info.value)


def test_snapshot_round_trips_every_field(store: RedisFlowStore, snap: Snap) -> None:
    full = snap(
        "f1",
        status="suspended",
        input={"draft_id": "d1"},
        suspended_at="approval",
        waiting=Waiting(kind="signal", name="approval", schema_={"type": "object"}, timeout_at=5_000),
        completed_steps={"plan": StepRecord(output={"steps": [1, 2]}, duration_ms=1.5, attempts=2)},
        step_order=["plan"],
        delivered_signals={"approval#0": None},
        rejected_signals=[{"name": "approval", "message": "bad", "at": 1}],
        error=ErrorInfo(message="boom", name="ValueError"),
        trace_context={"traceparent": "00-abc-def-01"},
        parent_flow_id="parent-1",
        segments=3,
    )
    store.snapshots.create(full)

    loaded = store.snapshots.require("f1")
    assert loaded == full
    assert loaded.waiting is not None and loaded.waiting.schema_ == {"type": "object"}
    assert loaded.summary().timeout_at == 5_000
    assert '"schema":{"type":"object"}' in full.to_json()


def test_cancel_marks_a_live_flow_cancelled(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="suspended", waiting={"kind": "signal", "name": "approval"}))

    cancelled = store.snapshots.cancel("f1", "rejected")

    assert (cancelled.status, cancelled.cancel_reason, cancelled.waiting) == ("cancelled", "rejected", None)
    assert store.snapshots.require("f1") == cancelled
    assert store.redis.zscore(store.keys.status_index("suspended"), "f1") is None
    assert store.redis.zscore(store.keys.status_index("cancelled"), "f1") is not None


def test_cancel_is_a_no_op_on_a_terminal_flow(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="completed", output=7))
    before = store.snapshots.require("f1")

    after = store.snapshots.cancel("f1", "too late")

    assert after == before
    assert store.snapshots.require("f1") == before


def test_cancel_of_an_unknown_flow_raises_flow_not_found(store: RedisFlowStore) -> None:
    with pytest.raises(FlowNotFound):
        store.snapshots.cancel("ghost", "why")


def test_cancel_wins_against_concurrent_writers(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="running"))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            current = store.snapshots.require("f1")
            if current.is_terminal:
                return
            with contextlib.suppress(VersionConflict):
                store.snapshots.save(current.model_copy(update={"segments": current.segments + 1}), current.version)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        cancelled = store.snapshots.cancel("f1", "stop")
    finally:
        stop.set()
        worker.join()
    assert cancelled.status == "cancelled"
    assert store.snapshots.require("f1").status == "cancelled"


def test_store_works_with_decode_responses(make_store: StoreFactory, snap: Snap) -> None:
    store = make_store(decode_responses=True)
    store.snapshots.create(snap("f1"))
    saved = store.snapshots.save(store.snapshots.require("f1").model_copy(update={"status": "running"}), 0)
    assert store.snapshots.require("f1") == saved
    page, cursor = store.listing.page(status="running")
    assert ([s.flow_id for s in page], cursor) == (["f1"], None)


def test_flow_snapshot_defaults_are_usable() -> None:
    fresh = FlowSnapshot(flow_id="f1", name="writer")
    assert fresh.status == "pending" and fresh.version == 0 and not fresh.is_terminal
    assert fresh.created_at > 0 and fresh.completed_steps == {}


def test_save_refuses_an_unknown_status(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1"))
    broken = store.snapshots.require("f1").model_copy(update={"status": "sleeping"})

    with pytest.raises(InvalidFlowId):
        store.snapshots.save(broken, expected_version=0)
    assert store.redis.zscore(store.keys.status_index("pending"), "f1") is not None


GO_SCHEMA = {"properties": {"ok": {"default": True, "title": "Ok", "type": "boolean"}}, "title": "Go", "type": "object"}


def test_stored_snapshot_omits_defaults_and_the_declared_schema_and_loads_equal(
    store: RedisFlowStore, snap: Snap
) -> None:
    suspended = snap("f1", status="suspended", signals={"go": GO_SCHEMA}, suspended_at="go",
                     waiting={"kind": "signal", "name": "go", "schema": GO_SCHEMA},
                     input={"note": None}, trace_context={"run_id": "run_1"})
    store.snapshots.create(suspended)

    raw = store.redis.hget(store.keys.flow("f1"), "data")

    assert raw is not None
    assert b'"waiting":{"kind":"signal","name":"go"}' in raw  # the schema is the declared one
    assert raw.count(b'"title":"Go"') == 1
    for default in (b'"output"', b'"error"', b'"completed_steps"', b'"rejected_signals"', b'"occurrence"',
                    b'"fallback"', b'"idempotency_key"', b'"parent_flow_id"'):
        assert default not in raw
    assert b'"input":{"note":null}' in raw  # values inside inputs and outputs keep their nulls
    assert store.snapshots.require("f1") == suspended
    summary = store.redis.hget(store.keys.flow("f1"), "summary")
    assert summary is not None and b"null" not in summary


@pytest.mark.parametrize("waiting", [
    {"kind": "signal", "name": "go", "schema": {"type": "object"}, "occurrence": 2},
    {"kind": "signal", "name": "go"},
    {"kind": "signal", "name": "undeclared", "timeout_at": 5_000},
    {"kind": "child", "name": "plan", "child_task_id": "t1", "occurrence": 1, "fallback": True},
    {"kind": "condition", "name": "ready", "every_s": 2.5},
], ids=["other-schema", "no-schema", "undeclared", "child", "condition"])
def test_stored_snapshot_round_trips_whatever_it_waits_for(
    store: RedisFlowStore, snap: Snap, waiting: dict[str, object]
) -> None:
    stored = snap("f1", status="suspended", signals={"go": GO_SCHEMA}, waiting=waiting,
                  error=ErrorInfo(message="boom", retryable=False), output={"x": None, "l": [None]},
                  completed_steps={"plan": StepRecord(output=None)}, step_order=["plan"])
    store.snapshots.create(stored)

    assert store.snapshots.require("f1") == stored


def test_a_snapshot_stored_with_every_field_written_still_loads(store: RedisFlowStore, snap: Snap) -> None:
    older = snap("f1", status="suspended", signals={"go": GO_SCHEMA},
                 waiting={"kind": "signal", "name": "go", "schema": GO_SCHEMA})
    store.snapshots.create(older)
    store.redis.hset(store.keys.flow("f1"), "data", older.model_dump_json(by_alias=True))

    assert store.snapshots.require("f1") == older
