"""Retention: a finished flow's timers and leftover signals go at once, every other key of it
expires after ``CRUX_FLOW_RETENTION_S``; ``delete_flow`` and ``purge_flows`` delete now."""

from __future__ import annotations

from cruxcelery.flows import clock
from cruxcelery.flows.codec import text
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.base import ttl_ms
from cruxcelery.flows.store.timers import TimerOps


class RetentionOps(TimerOps):
    def retire(self, snap: FlowSnapshot, signal_names: list[str], retention_s: float) -> None:
        """Drop the finished flow's timers and pending signals; expire its keys (and its
        idempotency key) after ``retention_s``."""
        keys = self._keys
        flow_id = snap.flow_id
        self.remove_timers_for(flow_id)
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

    def delete_flow(self, snap: FlowSnapshot, signal_names: list[str]) -> None:
        keys = self._keys
        flow_id = snap.flow_id
        self.remove_timers_for(flow_id)
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

    def flows_older_than(self, status: str, older_than_s: float, limit: int) -> list[str]:
        """Up to ``limit`` flow ids of ``status`` not updated for ``older_than_s`` seconds."""
        if limit <= 0:
            return []
        before = clock.now_ms() - int(older_than_s * 1000)
        rows = self._redis.zrangebyscore(self._keys.status_index(status), "-inf", before, start=0, num=limit)
        return [text(row) for row in rows]
