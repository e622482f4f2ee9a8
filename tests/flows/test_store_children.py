from __future__ import annotations

import pytest

from cruxcelery.flows.errors import FlowError
from cruxcelery.flows.store.flow_store import RedisFlowStore
from tests.concurrency import race


def test_child_result_first_writer_wins(store: RedisFlowStore) -> None:
    assert store.children.get("f1", "plan-0") is None

    assert store.children.put("f1", "plan-0", {"status": "ok", "value": 1}) is True
    assert store.children.put("f1", "plan-0", {"status": "ok", "value": 2}) is False

    assert store.children.get("f1", "plan-0") == {"status": "ok", "value": 1}


def test_concurrent_child_result_writers_have_one_winner(store: RedisFlowStore) -> None:
    won = race(lambda i: store.children.put("f1", "step", {"writer": i}))

    wins = [i for i, first in enumerate(won) if first]
    assert len(wins) == 1
    assert store.children.get("f1", "step") == {"writer": wins[0]}


def test_child_results_live_in_one_hash_per_flow_and_must_be_json(store: RedisFlowStore) -> None:
    store.children.put("f1", "step.1", {"status": "ok"})
    store.children.put("f1", "step.fallback", {"status": "ok"})
    assert store.redis.hlen(store.keys.children("f1")) == 2
    with pytest.raises(FlowError):
        store.children.put("f1", "other", {"value": object()})


def test_a_child_starts_once_while_it_runs_and_never_after_its_outcome_is_stored(store: RedisFlowStore) -> None:
    assert store.children.start("f1", "step.1", "first", 10_000) == ("ok", "")
    assert store.children.start("f1", "step.1", "second", 10_000) == ("held", "first")

    store.children.put("f1", "step.1", {"ok": True})

    assert store.children.start("f1", "step.1", "third", 10_000, replacing="first") == ("done", "")


def test_a_child_run_is_taken_over_only_from_the_holder_named(store: RedisFlowStore) -> None:
    store.children.start("f1", "step.1", "dead", 10_000)

    assert store.children.start("f1", "step.1", "next", 10_000, replacing="someone else") == ("held", "dead")
    assert store.children.start("f1", "step.1", "next", 10_000, replacing="dead") == ("ok", "")
    assert store.children.renew("f1", "step.1", "dead", 10_000) is False


def test_a_child_run_is_forgotten_only_by_its_holder(store: RedisFlowStore) -> None:
    store.children.start("f1", "step.1", "holder", 10_000)

    store.children.end("f1", "step.1", "another")
    assert store.children.start("f1", "step.1", "another", 10_000) == ("held", "holder")

    store.children.end("f1", "step.1", "holder")
    assert store.children.start("f1", "step.1", "another", 10_000) == ("ok", "")


def test_the_store_takes_no_ttl_for_child_outcomes_they_expire_with_their_flow(make_store) -> None:
    """``child_result_ttl_s`` was accepted and never applied: gone, so nobody relies on it."""
    with pytest.raises(TypeError, match="child_result_ttl_s"):
        make_store(child_result_ttl_s=60)
