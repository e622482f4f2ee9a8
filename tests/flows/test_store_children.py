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
