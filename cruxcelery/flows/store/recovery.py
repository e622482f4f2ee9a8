"""What the sweeper reads to recover flows without the broker: the lease index (executions whose
worker died), the outbox (resumes whose publish failed or never happened), claims (messages a
worker reserved or runs) and worker heartbeats, plus the sweeper's own lock.

Every call here is a single global-key command or a pipeline of idempotent ones, never mixed into
a per-flow script (Redis Cluster: per-flow keys and global keys live in different slots)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from cruxcelery.flows import clock
from cruxcelery.flows.codec import dumps, opt_text, scored, text
from cruxcelery.flows.store.base import StoreBase


class RecoveryOps(StoreBase):
    # -- the lease index ------------------------------------------------------------------------
    def track_lease(self, flow_id: str, ttl_s: float) -> None:
        """Record when the flow's execution lease lapses unless renewed (renewals move it on)."""
        self._redis.zadd(self._keys.leases(), {flow_id: clock.now_ms() + int(ttl_s * 1000)})

    def untrack_lease(self, flow_id: str) -> None:
        self._redis.zrem(self._keys.leases(), flow_id)

    def lapsed_leases(self, now_ms: int, limit: int = 200) -> list[str]:
        """Flows whose recorded lease expiry passed (their lease may have been renewed since)."""
        rows = self._redis.zrangebyscore(self._keys.leases(), "-inf", now_ms, start=0, num=limit)
        return [text(row) for row in rows]

    def leases_held(self, flow_ids: list[str]) -> list[bool]:
        pipe = self._redis.pipeline(transaction=False)
        for flow_id in flow_ids:
            pipe.exists(self._keys.lease(flow_id))
        return [bool(n) for n in pipe.execute()]

    def postpone_lease_check(self, flow_id: str, seconds: float) -> None:
        self._redis.zadd(self._keys.leases(), {flow_id: clock.now_ms() + int(seconds * 1000)}, xx=True)

    # -- the outbox -------------------------------------------------------------------------------
    def outbox_add(self, flow_id: str, name: str, reason: str, queue: str | None) -> str:
        member = dumps({"flow_id": flow_id, "name": name, "reason": reason, "queue": queue,
                        "id": uuid.uuid4().hex[:12]})
        self._redis.zadd(self._keys.outbox(), {member: clock.now_ms()})
        return member

    def outbox_done(self, member: str) -> None:
        self._redis.zrem(self._keys.outbox(), member)

    def outbox_due(self, older_than_ms: int, limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
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

    # -- claims and workers -----------------------------------------------------------------------
    def claim(self, task_id: str, worker_id: str, message: dict[str, Any]) -> None:
        self._redis.hset(self._keys.claims(), task_id, dumps({"worker": worker_id, "message": message}))

    def unclaim(self, task_id: str) -> None:
        self._redis.hdel(self._keys.claims(), task_id)

    def claims(self) -> dict[str, dict[str, Any]]:
        raw = self._redis.hgetall(self._keys.claims())
        out: dict[str, dict[str, Any]] = {}
        for key, value in raw.items():
            try:
                out[text(key)] = json.loads(value)
            except ValueError:
                self._redis.hdel(self._keys.claims(), key)
        return out

    def drop_claims_of(self, worker_id: str) -> None:
        """A worker shutting down warmly: the broker requeues what it reserved."""
        doomed = [task_id for task_id, claim in self.claims().items() if claim.get("worker") == worker_id]
        if doomed:
            self._redis.hdel(self._keys.claims(), *doomed)

    def heartbeat(self, worker_id: str) -> None:
        self._redis.zadd(self._keys.workers(), {worker_id: clock.now_ms()})

    def forget_worker(self, worker_id: str) -> None:
        self._redis.zrem(self._keys.workers(), worker_id)

    def live_workers(self, since_ms: int) -> set[str]:
        self._redis.zremrangebyscore(self._keys.workers(), "-inf", since_ms - 86_400_000)
        return {text(w) for w in self._redis.zrangebyscore(self._keys.workers(), since_ms, "+inf")}

    def take_sweeper_lock(self, token: str, ttl_ms: int) -> bool:
        return bool(self._scripts.sweeper_lock(keys=[self._keys.sweeper_lock()], args=[token, ttl_ms]))

    def sweeper_lock_holder(self) -> str | None:
        return opt_text(self._redis.get(self._keys.sweeper_lock()))
