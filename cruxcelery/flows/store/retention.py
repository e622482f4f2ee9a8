"""Retention: a finished flow's timers and leftover signals go at once, every other key of it
expires after ``CRUX_FLOW_RETENTION_S``; ``delete`` (``delete_flow``, ``purge_flows``) deletes
now, ``keep`` (a retried flow) undoes ``retire``."""

from __future__ import annotations

import redis

from cruxcelery.flows import clock
from cruxcelery.flows.codec import text
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.timers import Timers
from cruxcelery.flows.store.ttl import ttl_ms


class Retention:
    """Every key of one flow comes from ``FlowKeys.per_flow``: nothing here scans the keyspace."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, timers: Timers) -> None:
        self._redis = redis_client
        self._keys = keys
        self._timers = timers

    def retire(self, snap: FlowSnapshot, signal_names: list[str], retention_s: float) -> None:
        """Drop the finished flow's timers and pending signals; expire its keys (and its
        idempotency key) after ``retention_s``."""
        keys = self._keys
        flow_id = snap.flow_id
        self._timers.remove_for(flow_id)
        ttl = ttl_ms(retention_s, "retention_s")
        pipe = self._redis.pipeline(transaction=False)
        for name in signal_names:  # one key per command: a cluster pipeline routes each by its slot
            pipe.delete(keys.signal(flow_id, name))
        for key in keys.per_flow(flow_id, []):
            pipe.pexpire(key, ttl)
        if snap.idempotency_key is not None:
            pipe.pexpire(keys.idempotency(snap.name, snap.idempotency_key), ttl)
        pipe.zrem(keys.leases(), flow_id)
        pipe.execute()

    def keep(self, snap: FlowSnapshot) -> None:
        """Undo ``retire`` for a flow that runs again: its keys stop expiring; old durable-child
        outcomes go."""
        keys = self._keys
        flow_id = snap.flow_id
        pipe = self._redis.pipeline(transaction=False)
        for key in (keys.flow(flow_id), keys.delivered(flow_id), keys.signal_ids(flow_id)):
            pipe.persist(key)
        if snap.idempotency_key is not None:
            pipe.persist(keys.idempotency(snap.name, snap.idempotency_key))
        pipe.delete(keys.children(flow_id))
        pipe.execute()

    def delete(self, snap: FlowSnapshot, signal_names: list[str]) -> None:
        """Delete every key of the flow and its index entries now."""
        keys = self._keys
        flow_id = snap.flow_id
        self._timers.remove_for(flow_id)
        pipe = self._redis.pipeline(transaction=False)
        for key in keys.per_flow(flow_id, signal_names):
            pipe.delete(key)
        if snap.idempotency_key is not None:
            pipe.delete(keys.idempotency(snap.name, snap.idempotency_key))
        pipe.zrem(keys.status_index(snap.status), flow_id)
        pipe.zrem(keys.name_index(snap.name), flow_id)
        pipe.zrem(keys.all_index(), flow_id)
        pipe.zrem(keys.leases(), flow_id)
        pipe.execute()

    def older_than(self, status: str, older_than_s: float, limit: int) -> list[str]:
        """Up to ``limit`` flow ids of ``status`` whose status last changed ``older_than_s`` seconds ago
        or earlier."""
        if limit <= 0:
            return []
        before = clock.now_ms() - int(older_than_s * 1000)
        rows = self._redis.zrangebyscore(self._keys.status_index(status), "-inf", before, start=0, num=limit)
        return [text(row) for row in rows]
