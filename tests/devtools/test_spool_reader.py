"""Devtools reading the telemetry spool itself (``cruxcelery dev --redis URL``): records reach it
with no HTTP hop, forwarders in workers stand by meanwhile and take over when it stops. Redis db 7
(the spool tests' database), a stream of each test's own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client, standby_key
from tests.devtools.helpers import stored_records, wait_for
from tests.receiver import Receiver, sample_records
from tests.workers import subprocess_worker

REDIS = "redis://127.0.0.1:6379/7"


@pytest.fixture(scope="module", autouse=True)
def _require_redis() -> None:
    redis.Redis.from_url(REDIS).ping()


@pytest.fixture()
def stream() -> Iterator[str]:
    key = f"crux-spool-reader-{uuid.uuid4().hex[:8]}:telemetry"
    yield key
    redis.Redis.from_url(REDIS).delete(key, standby_key(key))


def spool(key: str, count: int) -> list[str]:
    """Append ``count`` records to the stream, four per entry, as actions' flushes do."""
    records = sample_records(count, tag=uuid.uuid4().hex[:16])
    exporter = SpoolExporter(spool_client(REDIS), key)
    for start in range(0, count, 4):
        exporter.export(records[start : start + 4])
        exporter.flush(1.0)
    return [str(record["recordId"]) for record in records]


def stored_ids(api: httpx.Client) -> list[str]:
    return [record["recordId"] for record in stored_records(api)]


def test_devtools_given_the_redis_url_stores_spooled_records_without_an_http_request(stream: str) -> None:
    expected = spool(stream, 40)
    with DevtoolsServer(DevtoolsConfig(db=":memory:", spool_redis_url=REDIS, spool_key=stream)) as server, \
            httpx.Client(base_url=server.url, timeout=10.0) as api:
        wait_for(lambda: sorted(stored_ids(api)) == sorted(expected) or None, timeout_s=15)
        time.sleep(0.5)
        assert sorted(stored_ids(api)) == sorted(expected)  # each once
    pending = redis.Redis.from_url(REDIS).xpending(stream, "crux-forwarders")
    assert pending["pending"] == 0


def test_forwarders_stand_by_while_devtools_reads_and_take_over_when_it_stops(stream: str) -> None:
    with Receiver() as receiver:
        forwarder = Forwarder(spool_client(REDIS), stream, HttpTransport(receiver.url), linger_s=0.0,
                              standby_key=standby_key(stream))
        with DevtoolsServer(DevtoolsConfig(db=":memory:", spool_redis_url=REDIS, spool_key=stream)) as server, \
                httpx.Client(base_url=server.url, timeout=10.0) as api:
            wait_for(lambda: redis.Redis.from_url(REDIS).exists(standby_key(stream)) or None, timeout_s=10)
            forwarder.start()
            first = spool(stream, 20)
            wait_for(lambda: len(stored_ids(api)) == 20 or None, timeout_s=15)
            assert receiver.record_ids() == [] and forwarder.stats.entries_read == 0
        later = spool(stream, 8)
        try:
            wait_for(lambda: sorted(receiver.record_ids()) == sorted(later) or None, timeout_s=15)
        finally:
            forwarder.stop(2.0)
        assert not set(first) & set(receiver.record_ids())


def test_a_worker_without_a_devtools_url_is_read_by_devtools_through_redis(tmp_path: Path) -> None:
    prefix = f"crux-spool-reader-{uuid.uuid4().hex[:8]}"
    env = {"CRUX_KEY_PREFIX": prefix, "CRUX_DEVTOOLS_URL": ""}
    config = DevtoolsConfig(db=":memory:", spool_redis_url=REDIS, spool_key=f"{prefix}:telemetry")
    try:
        with DevtoolsServer(config) as server, httpx.Client(base_url=server.url, timeout=10.0) as api, \
                subprocess_worker(tmp_path, app="tests.spool_app", env=env, concurrency=1) as worker:
            from tests import spool_app

            spool_app.app.send_task("sp.noop", args=[{"n": 1}], queue=worker.queue).get(timeout=30)
            runs = wait_for(lambda: api.get("/api/runs", params={"name": "spool no-op"}).json()["runs"] or None,
                            timeout_s=20)
            assert runs[0]["status"] == "ok"
    finally:
        redis.Redis.from_url(REDIS).delete(f"{prefix}:telemetry", standby_key(f"{prefix}:telemetry"))


def test_stopping_devtools_releases_the_standby_key(stream: str) -> None:
    with DevtoolsServer(DevtoolsConfig(db=":memory:", spool_redis_url=REDIS, spool_key=stream)):
        wait_for(lambda: redis.Redis.from_url(REDIS).exists(standby_key(stream)) or None, timeout_s=10)
    assert not redis.Redis.from_url(REDIS).exists(standby_key(stream))
