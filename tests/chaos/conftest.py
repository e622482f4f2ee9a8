"""The chaos suite: its own ``redis-server`` on a spare port (broker and flow store), restarted or
killed by the tests; subprocess prefork workers killed with SIGKILL."""

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
