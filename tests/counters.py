"""Counting executions in Redis, so tests see what ran inside worker processes."""

from __future__ import annotations

import redis


class Counters:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)

    def bump(self, flow_id: str, what: str) -> int:
        return int(self.redis.incr(f"crux-test:count:{flow_id}:{what}"))

    def count(self, flow_id: str, what: str) -> int:
        return int(self.redis.get(f"crux-test:count:{flow_id}:{what}") or 0)
