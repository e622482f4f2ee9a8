"""The flow store on a real 3-node Redis Cluster the test starts (``redis-server
--cluster-enabled yes`` on spare ports): every per-flow script touches one slot (the flow's hash
tag) and global structures are updated in separate calls, so nothing raises CROSSSLOT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import ClusterNode, RedisCluster

from cruxcelery.flows.snapshot import FlowSnapshot, Waiting
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.timers import Timer
from tests.redis_topologies import redis_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as ports:
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
        yield client
        client.close()


def test_a_flows_whole_life_runs_on_redis_cluster(cluster: RedisCluster) -> None:
    store = RedisFlowStore(cluster, FlowKeys("crux-cluster"))  # type: ignore[arg-type]
    snap = FlowSnapshot(flow_id="flow_cluster_1", name="writer", input={"x": 1})

    assert store.snapshots.create(snap, idempotency_key="order:1", queue="flows") == ("flow_cluster_1", True)
    other = snap.model_copy(update={"flow_id": "flow_other"})
    assert store.snapshots.create(other, idempotency_key="order:1")[1] is False
    token = store.leases.acquire_or_request_wake("flow_cluster_1", 30)
    assert token is not None and store.leases.renew("flow_cluster_1", token, 30)
    running = store.snapshots.save(snap.model_copy(update={"status": "running"}), 0, "pending")
    store.signals.push("flow_cluster_1", "approval", {"ok": True}, signal_id="s1")
    assert store.signals.take("flow_cluster_1", "approval", "approval#0") == (True, {"ok": True})
    assert store.children.put("flow_cluster_1", "plan.1", {"ok": True, "output": 3})
    timer = Timer(flow_id="flow_cluster_1", version=running.version, kind="timeout", name="approval#0", due_ms=1)
    store.timers.add(timer)
    assert store.timers.claim(store.timers.due(10)[0], 10)
    store.timers.drop(timer)
    suspended = store.snapshots.save(running.model_copy(update={
        "status": "suspended", "waiting": Waiting(kind="signal", name="approval")}), running.version, "running")
    store.leases.release("flow_cluster_1", token)

    assert [f.status for f in store.listing.page(status="suspended")[0]] == ["suspended"]
    assert store.listing.page(status="running")[0] == []
    assert store.snapshots.head("flow_cluster_1") == ("writer", "suspended", "flows")
    done = store.snapshots.save(suspended.model_copy(update={"status": "completed", "waiting": None}),
                                suspended.version, "suspended")
    store.retention.retire(done, ["approval"], 60)
    assert 0 < cluster.pttl(store.keys.flow("flow_cluster_1")) <= 60_000
    store.retention.delete(done, ["approval"])
    assert store.snapshots.load("flow_cluster_1") is None
    assert store.listing.page()[0] == []
