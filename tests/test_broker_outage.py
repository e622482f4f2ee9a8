"""A broker outage during ``start()``: the flow is stored ``pending``, the caller gets a typed
``BrokerUnavailable``, and the flow is published once the broker answers, by a retried ``start()``
with the same idempotency key or by the sweeper (from the outbox). The broker is a
``redis-server`` of the test's own; the flow store is the suite's Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from pydantic import BaseModel

from cruxcelery import BrokerUnavailable, Crux, CruxSettings
from tests.redis_server import RedisServer


class Job(BaseModel):
    n: int = 0


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "broker", aof=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def crux(broker: RedisServer, make_crux: Any) -> Crux:
    queue = f"crux-outage-{uuid.uuid4().hex[:8]}"
    app = Celery("crux_outage", broker=broker.url)  # no result backend: only the broker goes down
    app.conf.update(task_default_queue=queue, task_serializer="json", result_serializer="json",
                    accept_content=["json"], task_publish_retry=False)
    return make_crux(app, CruxSettings(redis_url="redis://127.0.0.1:6379/12", key_prefix=f"crux-o-{queue}"))


def _queued(broker: RedisServer, crux: Crux) -> int:
    return int(redis.Redis.from_url(broker.url).llen(crux.app.conf.task_default_queue))


def test_a_start_during_a_broker_outage_raises_broker_unavailable_and_keeps_the_flow_pending(broker, crux):
    handle = crux.flow("outage", args=Job)
    broker.kill()

    with pytest.raises(BrokerUnavailable):
        handle.start({"n": 1}, idempotency_key="order-1")

    flows, _ = crux.flows.list_flows(status="pending")
    assert [f.name for f in flows] == ["outage"]


def test_a_retried_start_with_the_same_idempotency_key_publishes_the_pending_flow(broker, crux):
    handle = crux.flow("outage", args=Job)
    broker.kill()
    with pytest.raises(BrokerUnavailable):
        handle.start({"n": 1}, idempotency_key="order-2")
    broker.start()

    flow_id = handle.start({"n": 1}, idempotency_key="order-2")

    assert handle.status(flow_id).status == "pending"
    assert _queued(broker, crux) == 1


def test_the_sweeper_publishes_what_the_outage_left_in_the_outbox(broker, crux, monkeypatch):
    from cruxcelery.flows import sweeper

    handle = crux.flow("outage", args=Job)
    broker.kill()
    with pytest.raises(BrokerUnavailable):
        handle.start({"n": 1})
    broker.start()
    monkeypatch.setattr(sweeper, "OUTBOX_GRACE_MS", 0)

    done = crux.flows.sweeper.tick()

    assert done["outbox"] == 1
    assert _queued(broker, crux) == 1
    crux.flows.sweeper.stop()
