"""Inside an execution the engine reaches the store through ``guarded``: a Redis failure in any of
the store's parts stops the execution (``EngineInterrupted``) instead of failing the flow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from cruxcelery.flows.guard import EngineInterrupted, guarded
from cruxcelery.flows.store.flow_store import RedisFlowStore


def _unreachable_store() -> RedisFlowStore:
    # Port 1 refuses connections: every command raises redis.ConnectionError.
    return RedisFlowStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))


def test_every_part_the_store_builds_is_named_in_parts() -> None:
    store = _unreachable_store()
    built = {name for name in vars(store) if name not in ("redis", "keys")}
    assert built == set(RedisFlowStore.PARTS)


def test_a_redis_failure_in_any_part_of_a_guarded_store_interrupts_the_engine() -> None:
    store = guarded(_unreachable_store())
    calls: list[Callable[[], Any]] = [
        lambda: store.snapshots.load("f1"),
        lambda: store.signals.delivered("f1"),
        lambda: store.signals.take("f1", "approval", "approval#0"),
        lambda: store.children.get("f1", "plan.1"),
        lambda: store.leases.release("f1", "token"),
    ]
    for call in calls:
        with pytest.raises(EngineInterrupted):
            call()
