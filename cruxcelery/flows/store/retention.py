"""Retention: a finished flow's timers and leftover signals go at once, every other key of it
expires after ``CRUX_FLOW_RETENTION_S``, and its index entries go with it (``forget_expired``,
run a batch at a time by every ``retire`` and in full by ``purge_flows``); ``delete``
(``delete_flow``, ``purge_flows``) deletes now, ``keep`` (a retried flow) undoes ``retire``."""

from __future__ import annotations

import redis

from cruxcelery.flows import clock
from cruxcelery.flows.codec import dumps, loads, reply_list, text
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.snapshots import index_entries
from cruxcelery.flows.store.timers import Timers
from cruxcelery.flows.store.ttl import ttl_ms

FORGET_BATCH = 100


def _retired_member(snap: FlowSnapshot) -> str:
    return dumps([snap.flow_id, snap.name, snap.status])


class Retention:
    """Every key of one flow comes from ``FlowKeys.per_flow``: nothing here scans the keyspace.
    ``FlowKeys.retired()`` remembers, for each retired flow, the index entries its keys cannot
    take with them when they expire (the indexes are global sorted sets)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, timers: Timers) -> None:
        self._redis = redis_client
        self._keys = keys
        self._timers = timers

    def retire(self, snap: FlowSnapshot, signal_names: list[str], retention_s: float) -> None:
        """Drop the finished flow's timers and pending signals; expire its keys (and its
        idempotency key) after ``retention_s``, and its index entries then (recorded in
        ``retired()``); forget a batch of flows whose keys expired already."""
        keys = self._keys
        flow_id = snap.flow_id
        self._timers.remove_for(flow_id)
        ttl = ttl_ms(retention_s, "retention_s")
        now = clock.now_ms()
        pipe = self._redis.pipeline(transaction=False)
        for name in signal_names:  # one key per command: a cluster pipeline routes each by its slot
            pipe.delete(keys.signal(flow_id, name))
        for key in keys.per_flow(flow_id, []):
            if key in (keys.lease(flow_id), keys.wake(flow_id)):
                pipe.delete(key)  # nobody runs a finished flow: its lease and wake flag go now
            else:
                pipe.pexpire(key, ttl)
        index_entries(pipe, keys, flow_id, snap.name, snap.status, snap.updated_at)
        if snap.idempotency_key is not None:
            pipe.pexpire(keys.idempotency(snap.name, snap.idempotency_key), ttl)
        pipe.zrem(keys.leases(), flow_id)
        pipe.zadd(keys.retired(), {_retired_member(snap): now + ttl})
        pipe.zrangebyscore(keys.retired(), "-inf", now, start=0, num=FORGET_BATCH)
        due = reply_list(pipe.execute()[-1])
        if due:
            self._forget([text(row) for row in due])

    def forget_expired(self) -> None:
        """Take every flow whose retention ended out of the indexes."""
        while True:
            due = self._redis.zrangebyscore(self._keys.retired(), "-inf", clock.now_ms(), start=0,
                                            num=FORGET_BATCH)
            self._forget([text(row) for row in due])
            if len(due) < FORGET_BATCH:
                return

    def _forget(self, members: list[str]) -> None:
        """Remove the index entries of each retired flow whose keys are gone; a flow still there
        (retried, or retired again later under a new expiry) keeps them."""
        if not members:
            return
        keys = self._keys
        entries = [loads(member) for member in members]
        pipe = self._redis.pipeline(transaction=False)
        for flow_id, _name, _status in entries:
            pipe.exists(keys.flow(flow_id))
        present = pipe.execute()
        pipe = self._redis.pipeline(transaction=False)
        for (flow_id, name, status), exists in zip(entries, present, strict=True):
            if not exists:
                pipe.zrem(keys.status_index(status), flow_id)
                pipe.zrem(keys.name_index(name), flow_id)
                pipe.zrem(keys.all_index(), flow_id)
        pipe.zrem(keys.retired(), *members)
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
        pipe.zrem(keys.retired(), _retired_member(snap))
        pipe.execute()

    def older_than(self, status: str, older_than_s: float, limit: int) -> list[str]:
        """Up to ``limit`` flow ids of ``status`` whose status last changed ``older_than_s`` seconds ago
        or earlier."""
        if limit <= 0:
            return []
        before = clock.now_ms() - int(older_than_s * 1000)
        rows = self._redis.zrangebyscore(self._keys.status_index(status), "-inf", before, start=0, num=limit)
        return [text(row) for row in rows]
