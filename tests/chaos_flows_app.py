"""The chaos suite's second Celery app: the cases that need no crash of Redis (10,000 signals,
50 concurrent resumes, timers longer than the visibility timeout) run on Redis 127.0.0.1:6379
database 2 (``CRUX_CHAOS_DB2``), broker and flow store both.

The broker's visibility timeout is 3 s (``broker_transport_options``) and kombu's restore sweep
runs every second (its default is every 100 s): any message that stays unacknowledged longer than
3 s is redelivered by the Redis transport, so an 8 s countdown published as one ETA message runs
twice (celery #2599, kombu #337). cruxcelery's wake-ups hop at most half of
it; the engine has to absorb whatever the transport delivers again."""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import task_prerun
from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.counters import Counters

REDIS = os.environ.get("CRUX_CHAOS_DB2", "redis://127.0.0.1:6379/2")
QUEUE = "crux-chaos-db2"
VISIBILITY_TIMEOUT_S = 3.0
PREFIX = "crux-c2"

app = json_app("crux_chaos_db2", REDIS, QUEUE, result_expires=600, broker_transport_options={
    "visibility_timeout": VISIBILITY_TIMEOUT_S,
    "unacked_restore_interval": 1, "unacked_restore_throttle": 1,  # kombu's sweep: every 1 s, not 100 s
})
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=0.2, key_prefix=PREFIX, telemetry_enabled=False))
counters = Counters(REDIS)


def deliveries_key(flow_id: str) -> str:
    return f"crux-test:deliveries:{flow_id}"


@task_prerun.connect
def _count_deliveries(sender: Any = None, task_id: str | None = None, kwargs: dict[str, Any] | None = None,
                      **_: Any) -> None:
    """Every execution of a timed flow's task: ``reason:task_id`` (``start``, ``timer``, ...). The
    transport redelivering a message repeats its task id; a timer firing twice would not."""
    name = getattr(sender, "name", "")
    if name in (f"crux.flow.{timed.name}", f"crux.flow.{rechecked.name}") and kwargs:
        counters.redis.rpush(deliveries_key(str(kwargs.get("flow_id"))), f"{kwargs.get('reason')}:{task_id}")


# -- 10,000 signals across 1,000 flows ---------------------------------------------------------------
class Many(BaseModel):
    signals: int = 10


class Tick(BaseModel):
    n: int


ticks = crux.flow("c2-ticks", args=Many, signals={"tick": Tick})


@ticks.handler
def run_ticks(scope: FlowScope[Many], args: Many, ctx: ActionContext) -> list[int]:
    """Waits for ``tick`` ``signals`` times; returns the payloads in the order it took them."""
    return [scope.suspend("tick").n for _ in range(args.signals)]


# -- 50 concurrent resumes of one flow ---------------------------------------------------------------
class Racy(BaseModel):
    step_s: float = 0.3


class Go(BaseModel):
    ok: bool = True


def _hit(flow_id: str, step: str, sleep_s: float) -> int:
    counters.bump(flow_id, step)
    time.sleep(sleep_s)
    return counters.count(flow_id, step)


racy = crux.flow("c2-racy", args=Racy, signals={"go": Go})


@racy.handler
def run_racy(scope: FlowScope[Racy], args: Racy, ctx: ActionContext) -> dict[str, int]:
    a = scope.step("a", lambda: _hit(scope.flow_id, "a", args.step_s))
    scope.suspend("go")
    b = scope.step("b", lambda: _hit(scope.flow_id, "b", args.step_s))
    scope.suspend("go")
    c = scope.step("c", lambda: _hit(scope.flow_id, "c", args.step_s))
    return {"a": a, "b": b, "c": c}


# -- timers and run_after delays longer than the visibility timeout ----------------------------------
class Timed(BaseModel):
    timeout_s: float = 8.0


def _expired(flow_id: str) -> None:
    counters.bump(flow_id, "expired")


timed = crux.flow("c2-timed", args=Timed, signals={"never": Go})


@timed.handler
def run_timed(scope: FlowScope[Timed], args: Timed, ctx: ActionContext) -> None:
    """A suspend whose timeout (8 s) is longer than the visibility timeout (3 s): it expires once."""
    counters.bump(scope.flow_id, "executions")
    scope.suspend("never", timeout=args.timeout_s, on_expired=lambda _snap: _expired(scope.flow_id))


rechecked = crux.flow("c2-rechecked", args=Timed)


def _condition(flow_id: str) -> bool:
    """True from its second evaluation on: the start evaluates it once, the 8 s re-check once."""
    return counters.bump(flow_id, "checks") >= 2


@rechecked.handler
def run_rechecked(scope: FlowScope[Timed], args: Timed, ctx: ActionContext) -> int:
    """``wait_until(every=8 s)``: one periodic re-check, due after the visibility timeout."""
    counters.bump(scope.flow_id, "executions")
    scope.wait_until("ready", lambda: _condition(scope.flow_id), every=args.timeout_s)
    return counters.count(scope.flow_id, "checks")


class Later(BaseModel):
    key: str
    delay_s: float = 8.0


@crux.action(name="c2.later.target", observability_name="runs later", args=Later)
def later_target(ctx: ActionContext, args: Later) -> None:
    counters.redis.rpush(f"crux-test:ran-at:{args.key}", f"{time.time():.3f}")


@crux.action(name="c2.later.schedule", observability_name="schedules a later run", args=Later)
def schedule_later(ctx: ActionContext, args: Later) -> str:
    result = ctx.crux.scheduler.run_after("run later", args.delay_s, later_target, args)
    return str(result.id)


@app.task(name="c2.plain.countdown", acks_late=True, shared=False)
def plain_countdown(key: str) -> None:
    """A plain Celery task, for comparison: a countdown message the transport may redeliver."""
    counters.redis.rpush(f"crux-test:ran-at:{key}", f"{time.time():.3f}")
