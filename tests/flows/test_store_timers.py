from __future__ import annotations

from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.timers import Timer
from tests.concurrency import race


def test_due_timers_are_returned_earliest_first(store: RedisFlowStore) -> None:
    late = Timer(flow_id="f1", version=3, kind="timeout", name="approval", due_ms=3_000)
    early = Timer(flow_id="f2", version=1, kind="recheck", name="ready", due_ms=1_000)
    store.timers.add(late)
    store.timers.add(early)

    assert store.timers.next_due_ms() == 1_000
    assert store.timers.due(now_ms=500) == []
    assert store.timers.due(now_ms=2_000) == [early]
    assert store.timers.due(now_ms=5_000) == [early, late]
    assert store.timers.due(now_ms=5_000, limit=1) == [early]


def test_timer_member_is_canonical_json(store: RedisFlowStore) -> None:
    timer = Timer(flow_id="f1", version=2, kind="publish", due_ms=10)
    store.timers.add(timer)

    members = store.redis.zrange(store.keys.timers(), 0, -1)
    assert members == [b'{"flow_id":"f1","kind":"publish","name":"","version":2}']


def test_adding_the_same_timer_again_moves_it(store: RedisFlowStore) -> None:
    store.timers.add(Timer(flow_id="f1", version=1, kind="timeout", due_ms=1_000))
    store.timers.add(Timer(flow_id="f1", version=1, kind="timeout", due_ms=9_000))

    assert store.redis.zcard(store.keys.timers()) == 1
    assert store.timers.next_due_ms() == 9_000


def test_a_timer_is_claimed_at_most_once_by_20_concurrent_claimers(store: RedisFlowStore) -> None:
    timer = Timer(flow_id="f1", version=4, kind="timeout", name="approval", due_ms=1_000)
    store.timers.add(timer)
    claims = race(lambda _: [store.timers.claim(due, 2_000) for due in store.timers.due(now_ms=2_000)])

    assert [won for each in claims for won in each].count(True) == 1
    assert store.timers.due(now_ms=2_000) == [], "a claimed timer is not due again at once"
    store.timers.drop(timer)
    assert store.timers.next_due_ms() is None
    assert store.redis.scard(store.keys.flow_timers("f1")) == 0


def test_a_claimed_timer_whose_claimer_died_fires_again_later(store: RedisFlowStore) -> None:
    timer = Timer(flow_id="f1", version=4, kind="timeout", name="approval", due_ms=1_000)
    store.timers.add(timer)
    assert store.timers.claim(timer, 2_000) is True  # ... and the claimer dies before timers.drop

    assert store.timers.due(now_ms=2_000 + 29_000) == []
    assert store.timers.due(now_ms=2_000 + 30_000) == [timer.model_copy(update={"due_ms": 32_000})]


def test_remove_timers_for_a_version(store: RedisFlowStore) -> None:
    store.timers.add(Timer(flow_id="f1", version=1, kind="timeout", due_ms=1_000))
    store.timers.add(Timer(flow_id="f1", version=1, kind="recheck", due_ms=1_500))
    store.timers.add(Timer(flow_id="f1", version=2, kind="timeout", due_ms=2_000))
    store.timers.add(Timer(flow_id="f2", version=1, kind="timeout", due_ms=3_000))

    assert store.timers.remove_for("f1", version=1) == 2

    assert [(t.flow_id, t.version) for t in store.timers.due(now_ms=10_000)] == [("f1", 2), ("f2", 1)]
    assert store.timers.remove_for("f1") == 1
    assert [t.flow_id for t in store.timers.due(now_ms=10_000)] == ["f2"]
    assert store.timers.remove_for("f1") == 0


def test_an_unreadable_timer_member_is_dropped(store: RedisFlowStore) -> None:
    store.redis.zadd(store.keys.timers(), {"garbage": 1})
    good = Timer(flow_id="f1", version=1, kind="publish", due_ms=2)
    store.timers.add(good)

    assert store.timers.due(now_ms=10) == [good]
    assert store.redis.zcard(store.keys.timers()) == 1


def test_the_flow_timer_set_outlives_its_latest_timer(store: RedisFlowStore) -> None:
    store.timers.add(Timer(flow_id="f1", version=1, kind="timeout", due_ms=1))
    assert store.redis.pttl(store.keys.flow_timers("f1")) > 6 * 86_400_000


def test_only_the_kinds_something_arms_exist_and_a_stored_lease_timer_is_dropped(store: RedisFlowStore) -> None:
    """A ``lease`` timer was documented and never armed (the lease index finds dead executions)."""
    store.redis.zadd(store.keys.timers(), {'{"flow_id":"f1","kind":"lease","name":"","version":1}': 1})

    assert store.timers.due(now_ms=10) == []
    assert store.redis.zcard(store.keys.timers()) == 0
