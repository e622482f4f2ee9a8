"""``CRUX_REDIS_URL`` (and ``CRUX_TELEMETRY_REDIS_URL``) reach a Sentinel-managed master and a
Redis Cluster by configuration alone: ``redis+sentinel://host:26379/service[/db]`` and
``redis+cluster://host:port,host:port`` (docs/flows.md, "Redis topologies")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from pydantic import BaseModel
from redis.cluster import ClusterNode, RedisCluster

from cruxcelery import ActionContext, ConfigurationError, CruxSettings, FlowCompleted, FlowScope
from cruxcelery.telemetry.spool.group import ensure_group, read_new
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client
from tests.flowhelpers import wait_status
from tests.redis_topologies import redis_cluster, redis_sentinel


class Order(BaseModel):
    item: str


class Approval(BaseModel):
    approved: bool


def _approval_flow(make_crux: Any, redis_url: str) -> tuple[Any, Any, str]:
    """A flow with a step and a wait for approval, on an app of its own whose broker is the suite's
    Redis and whose flow store is ``redis_url``."""
    queue = f"crux-urls-{uuid.uuid4().hex[:8]}"
    app = Celery("crux_urls", broker="redis://127.0.0.1:6379/0")
    app.conf.update(task_default_queue=queue, task_serializer="json", accept_content=["json"])
    prefix = f"crux-urls-{queue}"
    crux = make_crux(app, CruxSettings(redis_url=redis_url, key_prefix=prefix))
    handle = crux.flow("urls-approval", args=Order, signals={"approval": Approval})

    @handle.handler
    def run(scope: FlowScope[Order], args: Order, ctx: ActionContext) -> dict[str, Any]:
        priced = scope.step("price", lambda: {"item": args.item, "price": 3})
        approval = scope.suspend("approval")
        return {**priced, "approved": approval.approved}

    return app, handle, prefix


def _run_to_completion(app: Any, handle: Any) -> str:
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=30.0):
        flow_id = handle.start({"item": "tea"})
        wait_status(handle, flow_id, "suspended")
        handle.signal(flow_id, "approval", {"approved": True})
        assert handle.result(flow_id, timeout_s=20) == FlowCompleted(
            flow_id=flow_id, output={"item": "tea", "price": 3, "approved": True})
    return flow_id


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as ports:
        yield ports


def test_a_flow_runs_on_the_master_a_sentinel_names(make_crux, tmp_path):
    with redis_sentinel(tmp_path, service="flows-master") as (master, sentinel):
        app, handle, prefix = _approval_flow(make_crux, f"redis+sentinel://127.0.0.1:{sentinel}/flows-master/3")

        flow_id = _run_to_completion(app, handle)

        on_master = redis.Redis(port=master, db=3)
        assert [k for k in on_master.scan_iter(f"{prefix}:*{flow_id}*")], "the flow's keys live on the master"


def test_a_flow_runs_on_a_redis_cluster_named_by_its_nodes(make_crux, cluster_ports):
    nodes = ",".join(f"127.0.0.1:{p}" for p in cluster_ports[:2])
    app, handle, prefix = _approval_flow(make_crux, f"redis+cluster://{nodes}")

    flow_id = _run_to_completion(app, handle)

    cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster_ports])
    assert [k for k in cluster.scan_iter(f"{prefix}:*{flow_id}*")], "the flow's keys live in the cluster"
    cluster.close()


def test_the_telemetry_spool_writes_and_reads_on_a_redis_cluster(cluster_ports):
    client = spool_client(f"redis+cluster://127.0.0.1:{cluster_ports[0]}")
    key = f"crux-urls-{uuid.uuid4().hex[:8]}:telemetry"
    exporter = SpoolExporter(client, key)
    exporter.export([{"recordId": "r-1", "kind": "span:start"}, {"recordId": "r-2", "kind": "span:end"}])
    assert exporter.flush(5.0).status == "drained"

    ensure_group(client, key)
    read = read_new(client, key, "crux-forwarders", "reader", 10)

    assert [[r["recordId"] for r in json.loads(e.fields[b"d"])] for e in read.entries if e.fields] == [["r-1", "r-2"]]
    exporter.shutdown(1.0)


@pytest.mark.parametrize("url", [
    "redis+sentinel://127.0.0.1:26379",
    "redis+sentinel://127.0.0.1:26379/mymaster/zero",
    "redis+cluster://127.0.0.1:7000/2",
    "redis+cluster://127.0.0.1:notaport",
    "redis+cluster://,",
    "http://127.0.0.1:6379",
])
def test_a_malformed_redis_url_is_a_configuration_error(url):
    with pytest.raises(ConfigurationError, match="redis_url"):
        CruxSettings.from_env({"CRUX_REDIS_URL": url})
