"""``start()`` stores a ``pending`` flow as one step: an error before the flow is written leaves
no flow anything could list, run or half-recover, and a flow that is written but never dispatched
is listed and run by the sweeper. Errors are real: a Redis user whose ACL denies the flow
indexes or the outbox; the flow runs on a real in-thread worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from pydantic import BaseModel

from cruxcelery import Crux, CruxSettings, FlowCompleted, StoreUnavailable, retry_flow
from cruxcelery.flows.errors import FlowNotFound
from tests.celery_apps import json_app

REDIS = "redis://127.0.0.1:6379/12"


class Order(BaseModel):
    n: int


@pytest.fixture()
def prefix() -> Iterator[str]:
    prefix = f"crux-pc-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    doomed = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if doomed:
        client.delete(*doomed)
    client.close()


@pytest.fixture()
def settings(prefix: str) -> CruxSettings:
    return CruxSettings(redis_url=REDIS, key_prefix=prefix, flow_lease_s=1.0, sweep_interval_s=0.2)


@pytest.fixture()
def restricted_url(prefix: str) -> Iterator[Any]:
    """``restricted_url(*patterns, denied_command=None)``: a Redis URL whose user may touch only the
    keys matching ``patterns`` (each after the test's prefix), with any command but
    ``denied_command``; anything else is an ACL error."""
    admin = redis.Redis.from_url(REDIS)
    users: list[str] = []

    def make(*patterns: str, denied_command: str | None = None) -> str:
        user, password = f"{prefix}-user{len(users)}", uuid.uuid4().hex
        commands = ["+@all", *([f"-{denied_command}"] if denied_command else [])]
        admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], commands=commands,
                          keys=[f"{prefix}{pattern}" for pattern in patterns])
        users.append(user)
        return f"redis://{user}:{password}@127.0.0.1:6379/12"

    yield make
    for user in users:
        admin.acl_deluser(user)
    admin.close()


FLOW_KEYS = ":{*"  # every key of one flow (its hash tag)
INDEXES = ":flows:*"  # the status, name and all indexes and the lease index
LISTING_INDEXES = (":flows:status:*", ":flows:name:*", ":flows:all")  # all but the lease index
OUTBOX = ":outbox"


def _worker(crux: Crux) -> Any:
    return start_worker(crux.app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                        shutdown_timeout=30.0)


def _flow(crux: Crux) -> Any:
    handle = crux.flow("pc-order", args=Order)

    @handle.handler
    def run(scope: Any, args: Order, ctx: Any) -> int:
        return args.n * 2

    return handle


@pytest.mark.parametrize("allowed", [(FLOW_KEYS, OUTBOX), (FLOW_KEYS, OUTBOX, *LISTING_INDEXES)],
                         ids=["no-index-writable", "lease-index-not-writable"])
def test_a_start_that_fails_before_the_flow_is_indexed_and_recoverable_leaves_no_flow_behind(
        prefix, settings, restricted_url, make_crux, allowed):
    denied = settings.model_copy(update={"redis_url": restricted_url(*allowed)})
    handle = _flow(make_crux(json_app("crux-pc-denied", REDIS, f"{prefix}-queue"), denied))
    reader = make_crux(json_app("crux-pc-reader", REDIS, f"{prefix}-queue"), settings)

    with pytest.raises(StoreUnavailable):
        handle.start({"n": 1}, flow_id="order-1")

    with pytest.raises(FlowNotFound):
        _flow(reader).status("order-1")
    assert reader.flows.list_flows()[0] == []


def test_a_flow_whose_start_was_never_dispatched_is_listed_and_run_by_the_sweeper(prefix, settings, restricted_url,
                                                                                  make_crux):
    no_outbox = settings.model_copy(update={"redis_url": restricted_url(FLOW_KEYS, INDEXES)})
    handle = _flow(make_crux(json_app("crux-pc-starter", REDIS, f"{prefix}-queue"), no_outbox))
    with pytest.raises(StoreUnavailable):  # the dispatch's first write (the outbox) failed
        handle.start({"n": 21}, flow_id="order-2")
    worker_crux = make_crux(json_app("crux-pc-worker", REDIS, f"{prefix}-queue"), settings)
    worker_flow = _flow(worker_crux)

    assert [f.flow_id for f in worker_crux.flows.list_flows(status="pending")[0]] == ["order-2"]
    with _worker(worker_crux):
        worker_crux.flows.on_worker_ready()  # what a worker's ready signal starts (the in-thread worker sends none)
        try:
            result = worker_flow.result("order-2", timeout_s=30)
        finally:
            worker_crux.flows.on_worker_shutdown()

    assert result == FlowCompleted(flow_id="order-2", output=42)


FAILS_FIRST: set[str] = set()  # flow ids whose first run has failed


def test_a_retry_interrupted_once_its_flow_is_pending_is_run_by_the_sweeper(prefix, settings, restricted_url,
                                                                           make_crux):
    worker_crux = make_crux(json_app("crux-pc-worker", REDIS, f"{prefix}-queue"), settings)
    flaky = worker_crux.flow("pc-flaky", args=Order)

    @flaky.handler
    def run(scope: Any, args: Order, ctx: Any) -> int:
        if scope.flow_id not in FAILS_FIRST:
            FAILS_FIRST.add(scope.flow_id)
            raise RuntimeError("the first run fails")
        return args.n

    no_persist = settings.model_copy(update={"redis_url": restricted_url(FLOW_KEYS, INDEXES, OUTBOX,
                                                                         denied_command="persist")})
    operator = make_crux(json_app("crux-pc-operator", REDIS, f"{prefix}-queue"), no_persist)
    with _worker(worker_crux):
        worker_crux.flows.on_worker_ready()  # what a worker's ready signal starts (the in-thread worker sends none)
        try:
            flaky.start({"n": 7}, flow_id="order-3")
            assert flaky.result("order-3", timeout_s=30).status == "failed"
            with pytest.raises(StoreUnavailable):  # after the flow became pending again
                retry_flow("order-3", crux=operator)
            result = flaky.result("order-3", timeout_s=30)
        finally:
            worker_crux.flows.on_worker_shutdown()

    assert result == FlowCompleted(flow_id="order-3", output=7)
