"""Shared state of the flow store's parts: the client, the key layout, the scripts, the TTLs."""

from __future__ import annotations

import redis

from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.scripts import FlowScripts

DAY_S = 86_400.0


def ttl_ms(seconds: float, what: str) -> int:
    """Seconds to positive whole milliseconds."""
    millis = int(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"{what} must be positive, got {seconds!r}")
    return millis


class StoreBase:
    """Holds what every part of ``RedisFlowStore`` needs. Building one never talks to Redis.

    The client may use ``decode_responses=True`` or ``False``: replies are narrowed either way.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        keys: FlowKeys | None = None,
        *,
        signal_ttl_s: float = 30 * DAY_S,
        wake_ttl_s: float = DAY_S,
        child_result_ttl_s: float = 30 * DAY_S,
        idempotency_ttl_s: float | None = None,
    ) -> None:
        self._redis = redis_client
        self._keys = keys if keys is not None else FlowKeys()
        self._scripts = FlowScripts.register(redis_client)
        self._signal_ttl_ms = ttl_ms(signal_ttl_s, "signal_ttl_s")
        self._wake_ttl_ms = ttl_ms(wake_ttl_s, "wake_ttl_s")
        self._child_result_ttl_ms = ttl_ms(child_result_ttl_s, "child_result_ttl_s")
        self._idempotency_ttl_ms = (
            0 if idempotency_ttl_s is None else ttl_ms(idempotency_ttl_s, "idempotency_ttl_s")
        )

    @property
    def keys(self) -> FlowKeys:
        return self._keys

    @property
    def redis(self) -> redis.Redis:
        return self._redis
