from __future__ import annotations

from typing import Any

import pytest

from cruxcelery.flows.errors import SignalRejected
from cruxcelery.flows.store.flow_store import RedisFlowStore
from tests.concurrency import race


def test_signals_are_buffered_and_delivered_fifo_one_per_wait(store: RedisFlowStore) -> None:
    for i in range(3):
        store.signals.push("f1", "approval", {"n": i})

    assert store.signals.pending_count("f1", "approval") == 3
    assert [store.signals.take("f1", "approval", f"approval#{i}") for i in range(4)] == [
        (True, {"n": 0}),
        (True, {"n": 1}),
        (True, {"n": 2}),
        (False, None),
    ]


def test_a_wait_that_took_a_signal_gets_the_same_one_again(store: RedisFlowStore) -> None:
    store.signals.push("f1", "approval", {"n": 1})
    store.signals.push("f1", "approval", {"n": 2})

    assert store.signals.take("f1", "approval", "approval#0") == (True, {"n": 1})
    assert store.signals.take("f1", "approval", "approval#0") == (True, {"n": 1})  # a replay after a crash
    assert store.signals.delivered("f1") == {"approval#0": {"n": 1}}
    assert store.signals.pending_count("f1", "approval") == 1


def test_a_null_payload_is_a_delivered_signal(store: RedisFlowStore) -> None:
    store.signals.push("f1", "approval", None)

    assert store.signals.take("f1", "approval", "approval#0") == (True, None)
    assert store.signals.take("f1", "approval", "approval#1") == (False, None)


def test_concurrent_takes_deliver_each_payload_once(store: RedisFlowStore) -> None:
    for i in range(20):
        store.signals.push("f1", "approval", i)

    def take_all(worker: int) -> list[Any]:
        taken = []
        n = 0
        while (found_payload := store.signals.take("f1", "approval", f"approval#{worker}-{n}"))[0]:
            taken.append(found_payload[1])
            n += 1
        return taken

    delivered = [payload for taken in race(take_all) for payload in taken]
    assert sorted(delivered) == list(range(20))


def test_a_repeated_signal_id_is_stored_once(store: RedisFlowStore) -> None:
    assert store.signals.push("f1", "approval", {"n": 1}, signal_id="req-1") is True
    assert store.signals.push("f1", "approval", {"n": 1}, signal_id="req-1") is False
    assert store.signals.push("f1", "approval", {"n": 2}) is True

    assert store.signals.pending_count("f1", "approval") == 2


def test_signal_names_are_separate_queues(store: RedisFlowStore) -> None:
    store.signals.push("f1", "approval", 1)
    store.signals.push("f1", "review", 2)
    store.signals.push("f2", "approval", 3)

    assert store.signals.take("f1", "review", "review#0") == (True, 2)
    assert store.signals.take("f1", "approval", "approval#0") == (True, 1)
    assert store.signals.take("f2", "approval", "approval#0") == (True, 3)


def test_signal_queue_expires(store: RedisFlowStore) -> None:
    store.signals.push("f1", "approval", 1)
    assert store.redis.pttl(store.keys.signal("f1", "approval")) > 29 * 86_400_000


def test_a_payload_that_is_not_json_is_rejected(store: RedisFlowStore) -> None:
    with pytest.raises(SignalRejected):
        store.signals.push("f1", "approval", {"when": object()})
    with pytest.raises(SignalRejected):
        store.signals.push("f1", "approval", float("nan"))
    assert store.signals.pending_count("f1", "approval") == 0


def test_a_corrupt_stored_payload_is_reported(store: RedisFlowStore) -> None:
    store.redis.rpush(store.keys.signal("f1", "approval"), b"{not json")

    with pytest.raises(SignalRejected, match="not JSON"):
        store.signals.take("f1", "approval", "approval#0")
