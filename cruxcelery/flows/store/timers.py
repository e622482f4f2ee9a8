"""Timers: the source of truth for timeouts, condition re-checks and delayed wake-ups.

One sorted set (``FlowKeys.timers()``), score = due epoch ms, member = canonical JSON
``{"flow_id", "kind", "name", "version"}``. However many wake-ups deliver a due timer, one caller
claims it (``Timers.claim``: the ``CLAIM_TIMER`` script pushes its score ``CLAIM_MS`` on) and drops
it once it fired; a claimer that dies leaves it to fire again after ``CLAIM_MS``. Each flow's
members are also kept in ``FlowKeys.flow_timers(id)`` so ``remove_for`` needs no scan.

A deferred publish (``Deferred``) keeps its message under ``FlowKeys.deferred(id)`` while its
``publish`` timer waits.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cruxcelery.flows import clock
from cruxcelery.flows.codec import dumps, loads, reply_list, scored, text
from cruxcelery.flows.snapshot import FlowIdField
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.scripts import FlowScripts
from cruxcelery.flows.store.ttl import DAY_S

logger = logging.getLogger(__name__)

_FLOW_SET_MARGIN_MS = int(7 * DAY_S * 1000)
TimerKind = Literal["timeout", "recheck", "publish"]


class Timer(BaseModel):
    """A timer armed for one snapshot ``version`` of a flow. ``kind`` says what to do when due:
    ``timeout`` and ``recheck`` resume the flow, ``publish`` publishes a deferred message (its
    ``flow_id`` names the deferred publish). ``name`` is the wait it belongs to (may be empty). A
    timeout or re-check whose version is no longer the flow's is stale: it is dropped when due."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow_id: FlowIdField
    version: int = Field(ge=0)
    kind: TimerKind
    name: str = Field(default="", max_length=256)
    due_ms: int = Field(ge=0)

    def member(self) -> str:
        """The sorted-set member: canonical JSON without ``due_ms`` (that is the score)."""
        fields = {"flow_id": self.flow_id, "kind": self.kind, "name": self.name, "version": self.version}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_member(cls, member: str, due_ms: int) -> Timer:
        return cls.model_validate({**json.loads(member), "due_ms": due_ms})


CLAIM_MS = 30_000


class Timers:
    """``FlowKeys.timers()`` and each flow's ``FlowKeys.flow_timers(id)``."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts

    def add(self, timer: Timer) -> None:
        """Arm ``timer`` at ``timer.due_ms``. Adding the same timer again moves its due time.
        The flow's timer set is written first, so the set always covers the sorted set."""
        ttl = max(timer.due_ms - clock.now_ms(), 0) + _FLOW_SET_MARGIN_MS
        member = timer.member()
        flow_set = self._keys.flow_timers(timer.flow_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(flow_set, member)
        pipe.pexpire(flow_set, ttl, gt=True)
        pipe.pexpire(flow_set, ttl, nx=True)
        pipe.zadd(self._keys.timers(), {member: timer.due_ms})
        pipe.execute()

    def due(self, now_ms: int, limit: int = 100) -> list[Timer]:
        """Timers due at ``now_ms``, earliest first (not claimed: call ``claim`` on each).
        Unreadable members are removed and logged."""
        rows = scored(
            self._redis.zrangebyscore(
                self._keys.timers(), "-inf", now_ms, start=0, num=limit, withscores=True
            )
        )
        timers: list[Timer] = []
        for member, score in rows:
            try:
                timers.append(Timer.from_member(member, int(score)))
            except (ValueError, TypeError, ValidationError):
                logger.warning("removing unreadable flow timer %r", member[:200])
                self._redis.zrem(self._keys.timers(), member)
        return timers

    def claim(self, timer: Timer, now_ms: int) -> bool:
        """Claim a due timer for ``CLAIM_MS``: True for exactly one caller, however many race for
        it. Call ``drop`` once it fired; unclaimed, it fires again after ``CLAIM_MS``."""
        claimed = self._scripts.claim_timer(keys=[self._keys.timers()], args=[timer.member(), now_ms, CLAIM_MS])
        return int(text(claimed)) == 1

    def drop(self, timer: Timer) -> None:
        member = timer.member()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self._keys.timers(), member)
        pipe.srem(self._keys.flow_timers(timer.flow_id), member)
        pipe.execute()

    def next_due_ms(self) -> int | None:
        """Due time of the earliest timer, or ``None`` when there is none."""
        rows = scored(self._redis.zrange(self._keys.timers(), 0, 0, withscores=True))
        return int(rows[0][1]) if rows else None

    def remove_for(self, flow_id: str, version: int | None = None) -> int:
        """Remove the flow's timers armed for ``version`` (all of them when ``None``); returns how
        many were still armed."""
        flow_set = self._keys.flow_timers(flow_id)
        members = [text(m) for m in self._redis.smembers(flow_set)]
        doomed: list[str] = []
        for member in members:
            try:
                timer = Timer.from_member(member, 0)
            except (ValueError, TypeError, ValidationError):
                doomed.append(member)
                continue
            if version is None or timer.version == version:
                doomed.append(member)
        if not doomed:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self._keys.timers(), *doomed)
        pipe.srem(flow_set, *doomed)
        return int(text(reply_list(pipe.execute())[0]))


class Deferred:
    """A deferred publish's message, kept until it is published (its ``publish`` timer fired)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys) -> None:
        self._redis = redis_client
        self._keys = keys

    def put(self, deferred_id: str, payload: dict[str, Any], due_ms: int) -> None:
        """Keep a deferred publish's message until it is published (at most a week past due)."""
        ttl = max(due_ms - clock.now_ms(), 0) + _FLOW_SET_MARGIN_MS
        self._redis.set(self._keys.deferred(deferred_id), dumps(payload), px=ttl)

    def get(self, deferred_id: str) -> dict[str, Any] | None:
        raw = self._redis.get(self._keys.deferred(deferred_id))
        if raw is None:
            return None
        value = loads(raw)
        return value if isinstance(value, dict) else None

    def delete(self, deferred_id: str) -> None:
        self._redis.delete(self._keys.deferred(deferred_id))
