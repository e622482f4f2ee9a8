"""``GET /api/flows/{flowId}`` with ``--redis``: the snapshot status is read from Redis, read-only."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.flowstore import RedisFlowSnapshots
from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import RunBuilder, post

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture()
def prefix() -> Iterator[str]:
    if not _redis_up():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    prefix = "devtoolstest" + secrets.token_hex(4)
    client = redis.Redis.from_url(REDIS_URL)
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_flow_shows_its_snapshot_status_from_redis(prefix: str) -> None:
    summary = {"flowId": "flow_r1", "name": "writer", "status": "suspended", "waiting": {"name": "approval"}}
    client = redis.Redis.from_url(REDIS_URL)
    client.hset(f"{prefix}:flow:flow_r1", mapping={"summary": json.dumps(summary), "status": "suspended"})
    client.close()
    snapshots = RedisFlowSnapshots(REDIS_URL, prefix)
    with DevtoolsServer(DevtoolsConfig(flow_snapshots=snapshots, on_close=[snapshots.close])) as server, \
            httpx.Client(base_url=server.url) as api:
        run = RunBuilder("writer", "flow.run")
        post(api, [run.start(attributes={"flowId": "flow_r1"})])
        flow = api.get("/api/flows/flow_r1").json()
        assert (flow["snapshot"], flow["snapshotSource"]) == (summary, "redis")
        assert [r["runId"] for r in flow["runs"]] == [run.run_id]
        missing = api.get("/api/flows/flow_unknown").json()
        assert (missing["snapshot"], missing["snapshotError"]) == (None, "no snapshot found")


def test_an_unreachable_redis_leaves_the_flow_view_without_a_snapshot() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    snapshots = RedisFlowSnapshots(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    assert snapshots("flow_x")[0] is None
    assert (snapshots("flow_x")[1] or "").startswith("redis: ")
    snapshots.close()
