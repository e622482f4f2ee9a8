"""Fixtures for the flow store tests: a real Redis (db 13), one unique key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.status import FlowStatus
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_DB = 13

StoreFactory = Callable[..., RedisFlowStore]


@pytest.fixture
def prefix() -> str:
    return f"crux-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_store(prefix: str) -> Iterator[StoreFactory]:
    """Build stores on the test's prefix; ``decode_responses`` and TTLs may vary per store.

    Teardown deletes this prefix's keys (a SCAN here, in the test fixture only: the package never
    scans) and closes every client.
    """
    clients: list[redis.Redis] = []

    def make(decode_responses: bool = False, **options: Any) -> RedisFlowStore:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, decode_responses=decode_responses)
        try:
            client.ping()
        except redis.ConnectionError as exc:  # the suite requires the real server
            pytest.fail(f"Redis is required at {REDIS_HOST}:{REDIS_PORT}: {exc}")
        clients.append(client)
        return RedisFlowStore(client, FlowKeys(prefix), **options)

    yield make
    if clients:
        cleaner = clients[0]
        doomed = list(cleaner.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(doomed), 500):
            cleaner.delete(*doomed[start : start + 500])
    for client in clients:
        client.close()


@pytest.fixture
def store(make_store: StoreFactory) -> RedisFlowStore:
    return make_store()


@pytest.fixture
def snap() -> Callable[..., FlowSnapshot]:
    """``snap(flow_id, name="writer", status="pending", updated_at=..., **fields)``."""
    return make_snapshot


def make_snapshot(
    flow_id: str,
    name: str = "writer",
    status: FlowStatus = "pending",
    updated_at: int = 1_700_000_000_000,
    **fields: object,
) -> FlowSnapshot:
    """A snapshot with fixed times (so listing order is under the test's control)."""
    return FlowSnapshot.model_validate(
        {
            "flow_id": flow_id,
            "name": name,
            "status": status,
            "created_at": updated_at,
            "updated_at": updated_at,
            **fields,
        }
    )
