"""A read-only look at a flow's snapshot in Redis, for ``GET /api/flows/{flowId}``.

The flow store's key layout is the flow package's business and may change, so this is the one
place devtools knows it, and it imports nothing from the flows package: it reads the ``summary``
field (FlowSummary JSON) of the flow's hash, trying the known key shapes, and answers
``(None, reason)`` for anything it cannot read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import redis

from cruxcelery.telemetry.redis_urls import redis_client

__all__ = ["RedisFlowSnapshots"]

_FLOW_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class RedisFlowSnapshots:
    def __init__(self, url: str, prefix: str = "crux", timeout_s: float = 1.0) -> None:
        self.prefix = prefix
        self.client = redis_client(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def keys(self, flow_id: str) -> list[str]:
        return [f"{self.prefix}:flow:{flow_id}", f"{self.prefix}:{{{flow_id}}}:flow"]

    def __call__(self, flow_id: str) -> tuple[dict[str, Any] | None, str | None]:
        if not _FLOW_ID.fullmatch(flow_id):
            return None, "invalid flow id"
        try:
            for key in self.keys(flow_id):
                if self.client.type(key) not in (b"hash", "hash"):
                    continue
                raw = self.client.hget(key, "summary")
                if raw is None:
                    continue
                value = json.loads(raw)
                if isinstance(value, dict):
                    return value, None
            return None, "no snapshot found"
        except (redis.RedisError, ValueError, OSError) as exc:
            return None, f"redis: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.client.close()
