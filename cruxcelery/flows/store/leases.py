"""Execution leases (one execution per flow at a time), the wake flag that hands a resume
requested during an execution over to that execution, and the lease index the sweeper reads to
resume flows whose worker died mid-execution.

The lease index is one global sorted set: it is written by its own commands, never inside a
per-flow script (Redis Cluster: per-flow keys and global keys live in different slots). A new
flow's first entry is written by ``Snapshots.create``, before the flow itself, so a flow nobody
ever runs is found there too."""

from __future__ import annotations

import secrets

import redis

from cruxcelery.flows import clock
from cruxcelery.flows.codec import as_int, reply_list, text
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.scripts import FlowScripts
from cruxcelery.flows.store.ttl import ttl_ms


def _new_token() -> str:
    return secrets.token_hex(16)


class Leases:
    """The lease is ``FlowKeys.lease(id)`` holding a random token with a PX expiry; the wake flag
    is ``FlowKeys.wake(id)`` (expires after ``wake_ttl_ms``); ``FlowKeys.leases()`` maps each flow
    to when its lease lapses unless renewed."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts, *,
                 wake_ttl_ms: int) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts
        self._wake_ttl_ms = wake_ttl_ms

    def acquire_or_request_wake(self, flow_id: str, ttl_s: float) -> str | None:
        """Atomically: acquire the lease (returns its token; a pending wake flag is cleared, the new
        holder reads fresh state anyway), or set the wake flag (returns ``None``) while another
        execution holds it, so that holder's ``release`` reports the wake.

        One script, not an acquire then a wake request: with two calls the holder may release
        between them and the wake would wait for its TTL.
        """
        token = _new_token()
        keys = [self._keys.lease(flow_id), self._keys.wake(flow_id)]
        self.track(flow_id, ttl_s)  # first: a holder that dies is then always in the index
        acquired = self._scripts.acquire_or_wake(
            keys=keys,
            args=[token, ttl_ms(ttl_s, "ttl_s"), self._wake_ttl_ms],
        )
        return token if as_int(acquired) == 1 else None

    def renew(self, flow_id: str, token: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now if ``token`` still holds it."""
        renewed = as_int(self._scripts.renew_lease(
            keys=[self._keys.lease(flow_id)], args=[token, ttl_ms(ttl_s, "ttl_s")]
        )) == 1
        if renewed:
            self.track(flow_id, ttl_s)
        return renewed

    def release(self, flow_id: str, token: str) -> bool:
        """Release the lease if ``token`` holds it; return whether a wake was requested.

        Atomically deletes the lease (token match only) and takes (GETDEL) the wake flag, so a
        resume requested during the execution is never lost: on ``True`` the caller must run or
        schedule the flow again. The wake is also taken when the lease already expired and nobody
        holds it; it is left alone when another execution holds the lease (that one takes it).
        The flow leaves the lease index unless another execution holds the lease: the index
        entry is then that holder's, the sweeper's way to it should it die. (A separate call:
        the index lives in another Redis Cluster slot. An execution acquiring between the two
        puts its entry back at its first renewal.)
        """
        woke, held_by_another = (as_int(n) for n in reply_list(self._scripts.release_lease(
            keys=[self._keys.lease(flow_id), self._keys.wake(flow_id)], args=[token]
        )))
        if not held_by_another:
            self.untrack(flow_id)
        return woke == 1

    def held(self, flow_ids: list[str]) -> list[bool]:
        """Whether each flow's lease is held now, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for flow_id in flow_ids:
            pipe.exists(self._keys.lease(flow_id))
        return [bool(n) for n in pipe.execute()]

    # -- the lease index ------------------------------------------------------------------------
    def track(self, flow_id: str, ttl_s: float) -> None:
        """Record when the flow's execution lease lapses unless renewed (renewals move it on)."""
        self._redis.zadd(self._keys.leases(), {flow_id: clock.now_ms() + int(ttl_s * 1000)})

    def untrack(self, flow_id: str) -> None:
        self._redis.zrem(self._keys.leases(), flow_id)

    def lapsed(self, now_ms: int, limit: int = 200) -> list[str]:
        """Flows whose recorded lease expiry passed (their lease may have been renewed since)."""
        rows = self._redis.zrangebyscore(self._keys.leases(), "-inf", now_ms, start=0, num=limit)
        return [text(row) for row in rows]

    def postpone_check(self, flow_id: str, seconds: float) -> None:
        """Move a tracked flow's lease check ``seconds`` from now (untracked flows stay untracked)."""
        self._redis.zadd(self._keys.leases(), {flow_id: clock.now_ms() + int(seconds * 1000)}, xx=True)
