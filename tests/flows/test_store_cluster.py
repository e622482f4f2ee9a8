"""The flow store on a real 3-node Redis Cluster the test starts (``redis-server
--cluster-enabled yes`` on spare ports): every per-flow script touches one slot (the flow's hash
tag) and global structures are updated in separate calls, so nothing raises CROSSSLOT."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from cruxcelery.flows.snapshot import FlowSnapshot, Waiting
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.timers import Timer
from tests.redis_server import spare_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are required (.ci/run installs them)")
    root = Path(tmp_path_factory.mktemp("cluster"))
    ports = [spare_port() for _ in range(3)]
    processes = []
    for port in ports:
        node = root / str(port)
        node.mkdir()
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
             "--appendonly", "no", "--logfile", str(node / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    try:
        for port in ports:
            _wait_ping(port)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=30)
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
        deadline = time.monotonic() + 20
        while client.cluster_info().get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "the cluster never became ok"
            time.sleep(0.1)
        yield client
        client.close()
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def _wait_ping(port: int) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"node {port} did not start"
            time.sleep(0.05)


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
