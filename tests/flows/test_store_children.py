from __future__ import annotations

import pytest

from cruxcelery.flows.errors import FlowError
from cruxcelery.flows.store import RedisFlowStore
from tests.concurrency import race


def test_child_result_first_writer_wins(store: RedisFlowStore) -> None:
    assert store.get_child_result("f1", "plan-0") is None

    assert store.put_child_result("f1", "plan-0", {"status": "ok", "value": 1}) is True
    assert store.put_child_result("f1", "plan-0", {"status": "ok", "value": 2}) is False

    assert store.get_child_result("f1", "plan-0") == {"status": "ok", "value": 1}


def test_concurrent_child_result_writers_have_one_winner(store: RedisFlowStore) -> None:
    won = race(lambda i: store.put_child_result("f1", "step", {"writer": i}))

    wins = [i for i, first in enumerate(won) if first]
    assert len(wins) == 1
    assert store.get_child_result("f1", "step") == {"writer": wins[0]}


def test_delete_child_result(store: RedisFlowStore) -> None:
    store.put_child_result("f1", "step", {"status": "failed"})

    assert store.delete_child_result("f1", "step") is True
    assert store.get_child_result("f1", "step") is None
    assert store.delete_child_result("f1", "step") is False
    assert store.put_child_result("f1", "step", {"status": "ok"}) is True


def test_child_result_expires_and_must_be_json(store: RedisFlowStore) -> None:
    store.put_child_result("f1", "step", {"status": "ok"})
    assert store.redis.pttl(store.keys.child_result("f1", "step")) > 0
    with pytest.raises(FlowError):
        store.put_child_result("f1", "other", {"value": object()})
