"""The chaos suite: its own ``redis-server`` on a spare port (broker and flow store), restarted or
killed by the tests; subprocess prefork workers killed with SIGKILL. The cases that crash nothing
(devtools outages, the signal storm, concurrent resumes, long timers) use Redis 127.0.0.1:6379
database 2, emptied before and after the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("chaos-redis")), aof=True)
    server.start()
    os.environ["CRUX_CHAOS_REDIS"] = server.url
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def chaos_app(chaos_redis: RedisServer) -> Any:
    if chaos_redis.process is None:
        chaos_redis.start()
    from tests import chaos_app

    chaos_app.counters.redis.flushdb()
    return chaos_app


# -- the cases that crash nothing: Redis 127.0.0.1:6379 database 2, one shared prefork worker ------------
DB2_CONCURRENCY = 4


@pytest.fixture(scope="session")
def db2_app() -> Iterator[Any]:
    """``tests.chaos_flows_app`` on database 2, emptied before and after the session (its queue,
    flows, timers and counters go with it)."""
    from tests import chaos_flows_app

    client = chaos_flows_app.counters.redis
    client.flushdb()
    try:
        yield chaos_flows_app
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def db2_worker(db2_app: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One prefork worker subprocess (``-c 4``) for the database-2 cases, killed at the end."""
    from tests.workers import subprocess_worker

    with subprocess_worker(tmp_path_factory.mktemp("chaos-db2"), app="tests.chaos_flows_app", queue=db2_app.QUEUE,
                           concurrency=DB2_CONCURRENCY) as worker:
        yield worker
