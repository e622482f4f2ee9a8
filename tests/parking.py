"""A queue no worker consumes: a task published there waits until the test releases it to the
worker's queue (the Redis broker keeps a queue as a list: publish pushes left, consume pops right)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis


class Parking:
    def __init__(self, broker_url: str, worker_queue: str) -> None:
        self.queue = f"crux-parked-{os.getpid()}"
        self.worker_queue = worker_queue
        self._redis = redis.Redis.from_url(broker_url)

    def messages(self) -> list[dict[str, Any]]:
        """The parked messages, oldest first."""
        return [json.loads(raw) for raw in reversed(self._redis.lrange(self.queue, 0, -1))]

    def header(self, name: str) -> Any:
        """Header ``name`` of the oldest parked message."""
        return self.messages()[0]["headers"][name]

    def release(self) -> int:
        """Move every parked message to the worker's queue, oldest first; returns how many."""
        moved = 0
        while self._redis.lmove(self.queue, self.worker_queue, "RIGHT", "LEFT") is not None:
            moved += 1
        return moved

    def clear(self) -> None:
        self._redis.delete(self.queue)


@contextmanager
def parking(test_app: Any) -> Iterator[Parking]:
    lot = Parking(test_app.REDIS, test_app.QUEUE)
    lot.clear()
    try:
        yield lot
    finally:
        lot.clear()
