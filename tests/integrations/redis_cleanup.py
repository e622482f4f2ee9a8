"""Redis helpers of the integration tests: database 6, each test module its own queue and key
prefix, and only what it created is deleted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

REDIS = "redis://127.0.0.1:6379/6"
# what a worker leaves in its broker database besides its queue: task results, kombu's unacked
# hashes (messages it held, restored at warm shutdown), bindings of its pidbox and event queues
WORKER_LEFTOVERS = ("celery-task-meta-*", "unacked*", "_kombu.binding*")


def client() -> redis.Redis:
    return redis.Redis.from_url(REDIS)


def delete_created(*patterns: str) -> None:
    """Delete the keys matching ``patterns`` (queues, key prefixes, task results) in db 6."""
    conn = client()
    try:
        for pattern in patterns:
            keys = list(conn.scan_iter(match=pattern, count=1000))
            if keys:
                conn.delete(*keys)
    finally:
        conn.close()


def wait_for(read: Callable[[], Any], accept: Callable[[Any], bool], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    value = read()
    while not accept(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value
