"""Timers: ONE mechanism for every delay. A Redis sorted set is the source of truth; countdown
tasks are only wake-ups, for latency.

Kinds: ``timeout`` (a suspend's deadline) and ``recheck`` (a ``wait_until(every=)`` re-check) are
armed for one snapshot version of a flow and dropped when the flow's version moved on (stale);
``publish`` is a deferred task publish (``run_after`` delays longer than one hop). A flow whose
execution died is found by the lease index (``store.leases``), not by a timer.

Firing is at least once in effect exactly once: a sweeper claims a due timer by pushing its score
``CLAIM_MS`` into the future (atomic, so concurrent sweepers never both take it), fires it, and
only then removes it; a sweeper that dies in between leaves the timer to fire again later. A
resume fired twice is harmless (the flow's lease and version checks absorb it); a deferred publish
fired twice republishes the same task id.

Each wake-up's countdown is shorter than the broker's visibility timeout (the Redis transport
redelivers unacked ETA messages after it: celery #2599, kombu #337). The sweeper thread of every
worker (``sweeper.py``) sweeps every ``CRUX_SWEEP_INTERVAL_S``, so a lost wake-up only delays a
timer by that much.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from cruxcelery.core import args as action_args
from cruxcelery.core import scheduling
from cruxcelery.core.actions import CruxTask, flower_options
from cruxcelery.core.envelope import TaskBinding
from cruxcelery.core.publishing import outgoing, quiet
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.timers import Timer, TimerKind

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime

WAKE_TASK = "crux.flows.wake"
LOST_AFTER_MS = 2_000
EARLY_RETRY_MS = 200  # a timer due before the save that arms it is tried again this much later
log = logging.getLogger("cruxcelery.flows")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Timers:
    def __init__(self, flows: FlowRuntime) -> None:
        self._flows = flows

    def hop_s(self) -> float:
        return scheduling.hop_s(self._flows.crux)

    def arm(self, flow_id: str, kind: TimerKind, name: str, due_ms: int, version: int = 0) -> None:
        self._flows.store.timers.add(Timer(flow_id=flow_id, version=version, kind=kind, name=name,
                                          due_ms=due_ms))
        self.schedule_wakeup(due_ms)

    def arm_for(self, snap: FlowSnapshot) -> None:
        """The timers a suspended snapshot needs, replacing any the flow had: its timeout and
        one periodic re-check, both armed for this snapshot version."""
        self._flows.store.timers.remove_for(snap.flow_id)
        waiting = snap.waiting
        if waiting is None:
            return
        name = waiting.occurrence_key
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
        for timer in store.timers.due(_now_ms(), limit=200):
            if store.timers.claim(timer, _now_ms()):
                result = self._fire(timer)
                if result == "early":  # armed for a version its writer has yet to save: soon again
                    store.timers.add(timer.model_copy(update={"due_ms": _now_ms() + EARLY_RETRY_MS}))
                    continue
                fired += result == "fired"
                store.timers.drop(timer)
        upcoming = store.timers.next_due_ms()
        if upcoming is not None:
            self.schedule_wakeup(upcoming, force=force_next)
        return fired

    # -- deferred publishes: run_after delays longer than one hop ----------------------------------
    def publish_later(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any],
                      envelope: str | None, due_ms: int, task_id: str) -> None:
        """Publish task ``name`` (as ``task_id``, with ``envelope``) at ``due_ms``: a ``publish``
        timer whose payload waits in Redis until it fires."""
        current = self._flows.crux.app.current_worker_task
        if current is not None and current.request.id:  # Flower links the hop to its publisher
            options = {"root_id": current.request.root_id or current.request.id,
                       "parent_id": current.request.id, **options}
        payload = {"name": name, "args": list(args), "kwargs": kwargs, "options": options,
                   "envelope": envelope, "task_id": task_id}
        self._flows.store.deferred.put(task_id, payload, due_ms)
        self.arm(task_id, "publish", name, due_ms)

    def _fire(self, timer: Timer) -> Literal["fired", "stale", "early"]:
        if timer.kind == "publish":
            return "fired" if self._publish(timer.flow_id) else "stale"
        store = self._flows.store
        snap = store.snapshots.load(timer.flow_id)  # a timeout or a re-check
        if snap is not None and not snap.is_terminal and snap.version < timer.version \
                and store.leases.held([timer.flow_id])[0]:
            return "early"  # timers are armed before the save that suspends the flow
        if snap is None or snap.is_terminal or snap.version != timer.version:
            return "stale"  # the flow moved on (or the save that armed it never happened)
        self._flows.resume(timer.flow_id, "timer")
        return "fired"

    def _publish(self, deferred_id: str) -> bool:
        store, crux = self._flows.store, self._flows.crux
        payload = store.deferred.get(deferred_id)
        if payload is None:
            return False  # published already
        bound = TaskBinding.of(payload["task_id"], payload["name"])
        envelope = crux.codec.decode(payload["envelope"], bound) if payload.get("envelope") else None
        options = _flower_options(crux.app, payload)
        with outgoing(envelope):
            crux.app.send_task(payload["name"], args=payload["args"], kwargs=payload["kwargs"],
                               task_id=payload["task_id"], **options)
        store.deferred.delete(deferred_id)  # done only once the publish succeeded
        return True


def _flower_options(app: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """A deferred message's options with the name and redacted reprs Flower shows (its args are
    the real values, secrets included)."""
    options = dict(payload.get("options") or {})
    args, kwargs = tuple(payload.get("args") or ()), dict(payload.get("kwargs") or {})
    target = app.tasks.get(payload["name"])
    try:
        if isinstance(target, CruxTask):
            options.setdefault("shadow", target.shadow_name(args, kwargs, options))
            value: Any = action_args.coerce(target.crux_args_model, args, kwargs, target.name)
        else:
            value = kwargs if kwargs or not args else args
    except Exception:  # the worker reports invalid args; Flower shows nothing of them
        return {"argsrepr": "(…)", "kwargsrepr": "{…}", **options}
    return flower_options(value, options)
