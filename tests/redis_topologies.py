"""Redis topologies tests start of their own, on spare ports: a 3-node Redis Cluster, and a master
watched by one Sentinel."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_server import spare_port


def _require_redis_binaries() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are required (.ci/run installs them)")


def _server(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["redis-server", *extra, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _wait_ping(port: int) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"redis-server on {port} did not start"
            time.sleep(0.05)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def redis_cluster(root: Path) -> Iterator[list[int]]:
    """A 3-node Redis Cluster (no replicas), ready (``cluster_state:ok``); yields its ports."""
    _require_redis_binaries()
    ports = [spare_port() for _ in range(3)]
    processes = [_server(root / str(port), port, "--cluster-enabled", "yes",
                         "--cluster-config-file", str(root / str(port) / "nodes.conf")) for port in ports]
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
        client.close()
        yield ports
    finally:
        _stop(processes)


@contextlib.contextmanager
def redis_sentinel(root: Path, service: str = "mymaster") -> Iterator[tuple[int, int]]:
    """A master and one Sentinel watching it as ``service``; yields (master port, Sentinel port)."""
    _require_redis_binaries()
    master, sentinel = spare_port(), spare_port()
    (root / "sentinel").mkdir(parents=True, exist_ok=True)
    config = root / "sentinel" / "sentinel.conf"
    config.write_text(f"sentinel monitor {service} 127.0.0.1 {master} 1\n")
    processes = [_server(root / "master", master)]
    try:
        _wait_ping(master)
        processes.append(_server(root / "sentinel", sentinel, str(config), "--sentinel"))
        _wait_ping(sentinel)
        deadline = time.monotonic() + 10
        asked = redis.Redis(port=sentinel, decode_responses=True)
        while asked.sentinel_get_master_addr_by_name(service) is None:  # type: ignore[no-untyped-call]
            assert time.monotonic() < deadline, "the Sentinel never named the master"
            time.sleep(0.05)
        yield master, sentinel
    finally:
        _stop(processes)
