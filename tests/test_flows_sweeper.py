"""The sweeper across workers: a slow sweep never makes its worker look dead, two workers never
sweep at once, and a dead worker's message is re-published as it was. Each "worker" is a ``Crux``
of its own on one key prefix (its own sweeper, worker id and heartbeat); a sweep is made slow by
deferred publishes that Celery's ``before_task_publish`` hook holds up, as a slow broker would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish
from kombu.utils.json import loads
from pydantic import BaseModel

from cruxcelery import Crux, CruxSettings
from cruxcelery.flows.clock import now_ms
from tests.celery_apps import json_app

REDIS = "redis://127.0.0.1:6379/12"
SLOW_TASK = "tests.sweeper.slow_publish"
PUBLISH_DELAY_S = 0.5
SLOW_PUBLISHES = 16  # a sweep of about 8 s: longer than the old 3 s lock and the 1 s worker timeout


@pytest.fixture()
def prefix() -> str:
    return f"crux-sw-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def make_worker(prefix: str, make_crux: Any) -> Iterator[Any]:
    """A Crux playing one worker: a lease of 1 s makes a worker silent for 1 s dead."""
    made: list[Crux] = []

    def make() -> Crux:
        app = json_app(f"crux-sw-{uuid.uuid4().hex[:6]}", REDIS, f"{prefix}-queue")
        made.append(make_crux(app, CruxSettings(redis_url=REDIS, key_prefix=prefix, flow_lease_s=1.0,
                                                sweep_interval_s=0.2)))
        return made[-1]

    yield make
    for crux in made:
        crux.flows.sweeper.stop(timeout_s=15.0)  # the slow sweep ends before the keys go
    if made:
        store = made[0].flows.store
        doomed = list(store.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if doomed:
            store.redis.delete(*doomed)
        store.redis.delete(f"{prefix}-queue")


@pytest.fixture()
def slow_publishes() -> Iterator[None]:
    def hold_up(sender: str | None = None, **_: Any) -> None:
        if sender == SLOW_TASK:
            time.sleep(PUBLISH_DELAY_S)

    before_task_publish.connect(hold_up, weak=False)
    yield
    before_task_publish.disconnect(hold_up)


def _due_slow_publishes(worker: Crux) -> None:
    for n in range(SLOW_PUBLISHES):
        worker.flows.timers.publish_later(SLOW_TASK, (), {"n": n}, {}, None, now_ms() - 1, f"slow-{uuid.uuid4().hex}")


def _sweeping(worker: Crux) -> None:
    """Wait until ``worker``'s own sweeper thread is in its (slow) sweep."""
    store = worker.flows.store
    deadline = time.monotonic() + 30
    while store.workers.sweeper_lock_holder() != worker.flows.sweeper.worker_id:
        assert time.monotonic() < deadline, "the worker never started sweeping"
        time.sleep(0.02)


def test_a_worker_whose_sweep_is_slow_is_not_declared_dead_by_another(make_worker, slow_publishes):
    slow, other = make_worker(), make_worker()
    _due_slow_publishes(slow)
    slow.flows.sweeper.start()
    _sweeping(slow)
    task_id = f"held-{uuid.uuid4().hex}"
    slow.flows.store.claims.claim(task_id, slow.flows.sweeper.worker_id,
                                  {"name": SLOW_TASK, "args": [], "kwargs": {}})

    time.sleep(3.0)  # three worker timeouts into the slow sweep

    assert other.flows.sweeper.republish_dead_claims() == 0
    assert task_id in slow.flows.store.claims.all()


def test_two_workers_never_sweep_at_once(make_worker, slow_publishes):
    slow, other = make_worker(), make_worker()
    _due_slow_publishes(slow)
    slow.flows.sweeper.start()
    _sweeping(slow)
    swept_meanwhile: list[dict[str, int]] = []

    deadline = time.monotonic() + 4.0  # well past the old 3 s lock, well within the 8 s sweep
    while time.monotonic() < deadline:
        swept_meanwhile.append(other.flows.sweeper.tick())
        time.sleep(0.2)

    assert not any(swept_meanwhile), "another worker swept during the slow sweep"


class Nothing(BaseModel):
    pass


def _queued_headers(worker: Crux, queue: str) -> list[dict[str, Any]]:
    raw = worker.flows.store.redis.lrange(queue, 0, -1)
    return [loads(message)["headers"] for message in raw]


def test_a_dead_workers_message_is_republished_with_its_eta_and_retry_count(make_worker, prefix):
    dying, survivor = make_worker(), make_worker()
    dying.flow("sw-later", args=Nothing).handler(lambda scope, args, ctx: None)
    queue = f"{prefix}-queue"
    with start_worker(dying.app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=30.0):
        dying.flows.on_worker_ready()  # what a worker's ready signal starts (the in-thread worker sends none)
        sent = dying.app.send_task("crux.flow.sw-later", kwargs={"flow_id": "later-1", "reason": "start"},
                                   countdown=3600, retries=2)
        deadline = time.monotonic() + 30
        while sent.id not in dying.flows.store.claims.all():
            assert time.monotonic() < deadline, "the worker never reserved the message"
            time.sleep(0.05)
        dying.flows.sweeper.stop(drop_claims=False)  # dies: its claims stay, its heartbeat stops
    dying.flows.store.redis.delete(queue, "unacked", "unacked_index")  # and the broker forgot the message

    assert survivor.flows.sweeper.tick()["claims"] == 1

    [headers] = _queued_headers(survivor, queue)
    assert (headers["id"], headers["retries"]) == (sent.id, 2)
    assert headers["eta"] is not None, "the countdown was dropped: the task would run at once"
    assert datetime.fromisoformat(headers["eta"]) > datetime.now(UTC) + timedelta(minutes=55)
