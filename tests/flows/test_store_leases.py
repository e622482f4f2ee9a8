from __future__ import annotations

import time
from collections.abc import Callable

from cruxcelery.flows.store import RedisFlowStore
from tests.concurrency import race

StoreFactory = Callable[..., RedisFlowStore]


def test_lease_has_a_single_holder_among_concurrent_acquirers(store: RedisFlowStore) -> None:
    tokens = race(lambda _: store.acquire_lease("f1", ttl_s=30))

    holders = [t for t in tokens if t is not None]
    assert len(holders) == 1
    assert store.lease_holder("f1") == holders[0]


def test_lease_renew_and_release_check_the_token(store: RedisFlowStore) -> None:
    token = store.acquire_lease("f1", ttl_s=30)
    assert token is not None

    assert store.renew_lease("f1", "wrong-token", ttl_s=60) is False
    assert store.release_lease("f1", "wrong-token") is False
    assert store.lease_holder("f1") == token
    assert store.renew_lease("f1", token, ttl_s=60) is True
    assert store.redis.pttl(store.keys.lease("f1")) > 30_000
    assert store.release_lease("f1", token) is False
    assert store.lease_holder("f1") is None
    assert store.renew_lease("f1", token, ttl_s=60) is False


def test_lease_expires_and_can_be_taken_again(store: RedisFlowStore) -> None:
    first = store.acquire_lease("f1", ttl_s=0.05)
    assert first is not None
    time.sleep(0.12)

    second = store.acquire_lease("f1", ttl_s=30)

    assert second is not None and second != first
    assert store.renew_lease("f1", first, ttl_s=30) is False


def test_wake_requested_during_a_held_lease_is_reported_by_release(store: RedisFlowStore) -> None:
    token = store.acquire_lease("f1", ttl_s=30)
    assert token is not None
    assert store.acquire_lease("f1", ttl_s=30) is None

    store.request_wake("f1")

    assert store.release_lease("f1", token) is True
    assert store.take_wake("f1") is False  # consumed by the release


def test_release_without_a_wake_returns_false(store: RedisFlowStore) -> None:
    token = store.acquire_lease("f1", ttl_s=30)
    assert token is not None
    assert store.release_lease("f1", token) is False


def test_release_by_a_stale_token_leaves_the_wake_to_the_current_holder(store: RedisFlowStore) -> None:
    old = store.acquire_lease("f1", ttl_s=0.05)
    assert old is not None
    time.sleep(0.12)
    current = store.acquire_lease("f1", ttl_s=30)
    assert current is not None
    store.request_wake("f1")

    assert store.release_lease("f1", old) is False
    assert store.lease_holder("f1") == current
    assert store.release_lease("f1", current) is True


def test_acquire_or_request_wake_either_acquires_or_flags_the_holder(store: RedisFlowStore) -> None:
    token = store.acquire_lease_or_request_wake("f1", ttl_s=30)
    assert token is not None
    assert store.take_wake("f1") is False

    assert store.acquire_lease_or_request_wake("f1", ttl_s=30) is None

    assert store.release_lease("f1", token) is True
    assert store.acquire_lease_or_request_wake("f1", ttl_s=30) is not None


def test_take_wake_clears_the_flag_and_the_flag_expires(make_store: StoreFactory) -> None:
    store = make_store(wake_ttl_s=0.05)
    store.request_wake("f1")
    assert store.take_wake("f1") is True
    assert store.take_wake("f1") is False
    store.request_wake("f1")
    time.sleep(0.12)
    assert store.take_wake("f1") is False
