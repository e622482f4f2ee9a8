"""What the sweeper reads to recover flows without the broker, besides the lease index
(``leases``): the outbox (resumes whose publish failed or never happened), claims (messages a
worker reserved or runs) and workers (their heartbeats, and the sweeper's own lock).

Every call here is a single global-key command or a pipeline of idempotent ones, never mixed into
a per-flow script (Redis Cluster: per-flow keys and global keys live in different slots)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

from cruxcelery.flows import clock
from cruxcelery.flows.codec import as_int, dumps, opt_text, scored, text
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.scripts import FlowScripts


class Outbox:
    """``FlowKeys.outbox()``: a sorted set of resumes being published (member JSON), scored by
    when they were first tried. A publish adds its entry first and removes it once sent."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys) -> None:
        self._redis = redis_client
        self._keys = keys

    def add(self, flow_id: str, name: str, reason: str, queue: str | None) -> str:
        member = dumps({"flow_id": flow_id, "name": name, "reason": reason, "queue": queue,
                        "id": uuid.uuid4().hex[:12]})
        self._redis.zadd(self._keys.outbox(), {member: clock.now_ms()})
        return member

    def done(self, member: str) -> None:
        self._redis.zrem(self._keys.outbox(), member)

    def due(self, older_than_ms: int, limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        """Entries first tried before ``older_than_ms``; unreadable ones are removed."""
        rows = scored(self._redis.zrangebyscore(self._keys.outbox(), "-inf", older_than_ms, start=0, num=limit,
                                                withscores=True))
        out: list[tuple[str, dict[str, Any]]] = []
        for member, _ in rows:
            try:
                entry = json.loads(member)
            except ValueError:
                self._redis.zrem(self._keys.outbox(), member)
                continue
            out.append((member, entry))
        return out


class Claims:
    """``FlowKeys.claims()``: a hash, task id -> the message a worker reserved and that worker's id."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys) -> None:
        self._redis = redis_client
        self._keys = keys

    def claim(self, task_id: str, worker_id: str, message: dict[str, Any]) -> None:
        self._redis.hset(self._keys.claims(), task_id, dumps({"worker": worker_id, "message": message}))

    def unclaim(self, task_id: str) -> None:
        self._redis.hdel(self._keys.claims(), task_id)

    def all(self) -> dict[str, dict[str, Any]]:
        """Every claim by task id; unreadable ones are removed."""
        raw = self._redis.hgetall(self._keys.claims())
        out: dict[str, dict[str, Any]] = {}
        for key, value in raw.items():
            try:
                out[text(key)] = json.loads(value)
            except ValueError:
                self._redis.hdel(self._keys.claims(), key)
        return out

    def drop_of(self, worker_id: str) -> None:
        """A worker shutting down warmly: the broker requeues what it reserved."""
        doomed = [task_id for task_id, claim in self.all().items() if claim.get("worker") == worker_id]
        if doomed:
            self._redis.hdel(self._keys.claims(), *doomed)


class Workers:
    """``FlowKeys.workers()``: worker id -> its last heartbeat (ms); ``FlowKeys.sweeper_lock()``:
    the worker sweeping now (PX)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts

    def heartbeat(self, worker_id: str) -> None:
        self._redis.zadd(self._keys.workers(), {worker_id: clock.now_ms()})

    def forget(self, worker_id: str) -> None:
        self._redis.zrem(self._keys.workers(), worker_id)

    def live(self, since_ms: int) -> set[str]:
        """Workers that heartbeat since ``since_ms`` (those silent for a day are forgotten)."""
        self._redis.zremrangebyscore(self._keys.workers(), "-inf", since_ms - 86_400_000)
        return {text(w) for w in self._redis.zrangebyscore(self._keys.workers(), since_ms, "+inf")}

    def alive(self, worker_id: str, since_ms: int) -> bool:
        """Whether ``worker_id`` heartbeat since ``since_ms``."""
        beat = self._redis.zscore(self._keys.workers(), worker_id)
        return beat is not None and float(beat) >= since_ms

    def take_sweeper_lock(self, token: str, ttl_ms: int) -> bool:
        """Take the sweeper lock, or extend it if ``token`` holds it."""
        return bool(self._scripts.sweeper_lock(keys=[self._keys.sweeper_lock()], args=[token, ttl_ms]))

    def extend_sweeper_lock(self, token: str, ttl_ms: int) -> bool:
        """Extend the sweeper lock if ``token`` holds it (never takes it)."""
        return as_int(self._scripts.renew_lease(keys=[self._keys.sweeper_lock()], args=[token, ttl_ms])) == 1

    def release_sweeper_lock(self, token: str) -> None:
        """Release the sweeper lock if ``token`` holds it."""
        self._scripts.delete_if(keys=[self._keys.sweeper_lock()], args=[token])

    def sweeper_lock_holder(self) -> str | None:
        return opt_text(self._redis.get(self._keys.sweeper_lock()))
