"""Timers: a Redis sorted set is the source of truth; countdown tasks are only wake-ups.

Each wake-up's countdown is shorter than the broker's visibility timeout (the Redis transport
redelivers unacked ETA messages after it: celery #2599, kombu #337). A wake-up sweeps what is
due and arms the next one; a sweep also runs at worker start and after every flow execution, so
a lost wake-up only delays a timer. A claimed timer (ZREM) fires once; a stale one does nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from cruxcelery import scheduling
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.timers import Timer
from cruxcelery.publishing import outgoing, quiet

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime

WAKE_TASK = "crux.flows.wake"
HOP_TASK = scheduling.HOP_TASK  # registered by scheduling.install at Crux(app); its body is Timers.hop
LOST_AFTER_MS = 2_000
log = logging.getLogger("cruxcelery.flows")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Timers:
    def __init__(self, flows: FlowRuntime) -> None:
        self._flows = flows

    def hop_s(self) -> float:
        return scheduling.hop_s(self._flows.crux)

    def arm(self, flow_id: str, kind: str, name: str, due_ms: int, version: int = 0) -> None:
        self._flows.store.add_timer(Timer(flow_id=flow_id, version=version, kind=kind, name=name,
                                          due_ms=due_ms))
        self.schedule_wakeup(due_ms)

    def arm_for(self, snap: FlowSnapshot) -> None:
        """The timers a suspended snapshot needs: its timeout and its periodic re-check."""
        waiting = snap.waiting
        if waiting is None:
            return
        name = f"{waiting.name}#{waiting.occurrence}"
        if waiting.timeout_at is not None:
            self.arm(snap.flow_id, "timeout", name, waiting.timeout_at, snap.version)
        if waiting.every_s is not None:
            due = _now_ms() + int(waiting.every_s * 1000)
            if waiting.timeout_at is None or due < waiting.timeout_at:
                self.arm(snap.flow_id, "recheck", name, due, snap.version)

    def schedule_wakeup(self, due_ms: int, *, force: bool = False) -> None:
        """Publish a wake-up for ``due_ms`` unless one at or before it is already in flight. A
        wake-up more than ``LOST_AFTER_MS`` overdue counts as lost."""
        redis = self._flows.store.redis
        key = self._flows.store.keys.timers_armed()
        now = _now_ms()
        fire_at = max(now, min(due_ms, now + int(self.hop_s() * 1000)))
        armed = redis.get(key)
        if not force and armed is not None and now - LOST_AFTER_MS <= int(armed) <= fire_at + 50:
            return
        redis.set(key, fire_at, px=fire_at - now + LOST_AFTER_MS)
        with quiet():
            self._flows.crux.app.send_task(WAKE_TASK, kwargs={"armed": fire_at},
                                           countdown=(fire_at - now) / 1000.0)

    def wake(self, armed: int | None) -> int:
        """The wake-up task: forget this wake-up, sweep, arm the next."""
        redis = self._flows.store.redis
        key = self._flows.store.keys.timers_armed()
        current = redis.get(key)
        if armed is not None and current is not None and int(current) == armed:
            redis.delete(key)
        return self.sweep()

    def sweep(self, *, force_next: bool = False) -> int:
        """Fire every due timer this process can claim; arm a wake-up for the next one."""
        store = self._flows.store
        fired = 0
        for timer in store.due_timers(_now_ms(), limit=200):
            if store.claim_timer(timer):
                fired += self._fire(timer)
        upcoming = store.next_due_ms()
        if upcoming is not None:
            self.schedule_wakeup(upcoming, force=force_next)
        return fired

    # -- deferred publishes: run_after delays longer than one hop ----------------------------------
    def publish_later(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any],
                      envelope: str, due_ms: int, task_id: str) -> None:
        """Publish task ``name`` at ``due_ms`` by hopping: each hop is a countdown no longer than
        ``hop_s`` that publishes the next, the last one the task itself (with ``envelope``)."""
        self._hop({"hop_id": uuid.uuid4().hex, "seq": 0, "name": name, "args": list(args), "kwargs": kwargs,
                   "options": options, "envelope": envelope, "task_id": task_id, "due_ms": due_ms})

    def _hop(self, payload: dict[str, Any]) -> None:
        countdown_ms = min(payload["due_ms"] - _now_ms(), int(self.hop_s() * 1000))
        with quiet():
            self._flows.crux.app.send_task(HOP_TASK, kwargs={"payload": payload},
                                           countdown=max(countdown_ms, 0) / 1000.0)

    def hop(self, payload: dict[str, Any]) -> str:
        """The hop task: once per (hop, seq) whatever the deliveries, hop again or publish."""
        store, crux = self._flows.store, self._flows.crux
        remaining = payload["due_ms"] - _now_ms()
        key = store.keys.hop(payload["hop_id"], payload["seq"])
        if not store.redis.set(key, 1, nx=True, px=max(remaining, 0) + 86_400_000):
            return "duplicate"
        if remaining > self.hop_s() * 1000:
            self._hop({**payload, "seq": payload["seq"] + 1})
            return "hopped"
        with outgoing(crux.codec.decode(payload["envelope"])):
            crux.app.send_task(payload["name"], args=payload["args"], kwargs=payload["kwargs"],
                               task_id=payload["task_id"], countdown=max(remaining, 0) / 1000.0,
                               **payload["options"])
        return "published"

    def _fire(self, timer: Timer) -> int:
        if timer.kind in ("timeout", "recheck"):
            snap = self._flows.store.load(timer.flow_id)
            waiting = snap.waiting if snap is not None and not snap.is_terminal else None
            if waiting is None or f"{waiting.name}#{waiting.occurrence}" != timer.name:
                return 0  # stale: the flow moved on
        self._flows.resume(timer.flow_id, "timer")
        return 1
