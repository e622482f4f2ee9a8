from __future__ import annotations

import time

from cruxcelery.flows.store.flow_store import RedisFlowStore
from tests.concurrency import race


def _holder(store: RedisFlowStore, flow_id: str) -> str | None:
    raw = store.redis.get(store.keys.lease(flow_id))
    return raw.decode() if isinstance(raw, bytes) else raw


def test_lease_has_a_single_holder_among_concurrent_acquirers(store: RedisFlowStore) -> None:
    tokens = race(lambda _: store.leases.acquire_or_request_wake("f1", ttl_s=30))

    holders = [t for t in tokens if t is not None]
    assert len(holders) == 1
    assert _holder(store, "f1") == holders[0]


def test_lease_renew_and_release_check_the_token(store: RedisFlowStore) -> None:
    token = store.leases.acquire_or_request_wake("f1", ttl_s=30)
    assert token is not None

    assert store.leases.renew("f1", "wrong-token", ttl_s=60) is False
    assert store.leases.release("f1", "wrong-token") is False
    assert _holder(store, "f1") == token
    assert store.leases.renew("f1", token, ttl_s=60) is True
    assert store.redis.pttl(store.keys.lease("f1")) > 30_000
    assert store.leases.release("f1", token) is False
    assert _holder(store, "f1") is None
    assert store.leases.renew("f1", token, ttl_s=60) is False


def test_lease_expires_and_can_be_taken_again(store: RedisFlowStore) -> None:
    first = store.leases.acquire_or_request_wake("f1", ttl_s=0.05)
    assert first is not None
    time.sleep(0.12)

    second = store.leases.acquire_or_request_wake("f1", ttl_s=30)

    assert second is not None and second != first
    assert store.leases.renew("f1", first, ttl_s=30) is False


def test_a_resume_during_a_held_lease_is_reported_by_the_holders_release(store: RedisFlowStore) -> None:
    token = store.leases.acquire_or_request_wake("f1", ttl_s=30)
    assert token is not None

    assert store.leases.acquire_or_request_wake("f1", ttl_s=30) is None  # flags the holder

    assert store.leases.release("f1", token) is True
    again = store.leases.acquire_or_request_wake("f1", ttl_s=30)
    assert again is not None
    assert store.leases.release("f1", again) is False  # the flag was consumed


def test_release_by_a_stale_token_leaves_the_wake_to_the_current_holder(store: RedisFlowStore) -> None:
    old = store.leases.acquire_or_request_wake("f1", ttl_s=0.05)
    assert old is not None
    time.sleep(0.12)
    current = store.leases.acquire_or_request_wake("f1", ttl_s=30)
    assert current is not None
    assert store.leases.acquire_or_request_wake("f1", ttl_s=30) is None

    assert store.leases.release("f1", old) is False
    assert _holder(store, "f1") == current
    assert store.leases.release("f1", current) is True


def test_held_leases_are_indexed_until_released(store: RedisFlowStore) -> None:
    token = store.leases.acquire_or_request_wake("f1", ttl_s=0.05)
    assert token is not None
    time.sleep(0.12)

    assert store.leases.lapsed(int(time.time() * 1000)) == ["f1"]
    assert store.leases.held(["f1"]) == [False]

    second = store.leases.acquire_or_request_wake("f1", ttl_s=30)
    assert second is not None
    assert store.leases.lapsed(int(time.time() * 1000)) == []
    store.leases.release("f1", second)
    assert store.leases.lapsed(int(time.time() * 1000) + 60_000) == []
