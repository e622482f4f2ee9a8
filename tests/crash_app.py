"""A second Celery app for crash and timer tests with subprocess workers: its own queue and its
own Redis database (11), a 5 s broker visibility timeout and a 2 s flow lease."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.counters import Counters

REDIS = os.environ.get("CRUX_CRASH_REDIS", "redis://127.0.0.1:6379/11")
QUEUE = "crux-crash-tests"
VISIBILITY_S = 5.0

app = json_app(
    "crux_crash", REDIS, QUEUE, worker_prefetch_multiplier=1,
    # kombu restores a dead worker's unacked messages every interval x throttle seconds
    broker_transport_options={"visibility_timeout": VISIBILITY_S, "unacked_restore_interval": 1,
                              "unacked_restore_throttle": 1, "unacked_mutex_expire": 10},
)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-c", flow_lease_s=2.0))
counters = Counters(REDIS)


class CrashArgs(BaseModel):
    sleep_s: float = 30.0


crashy = crux.flow("c-crashy", args=CrashArgs)


@crashy.handler
def run_crashy(scope: FlowScope[CrashArgs], args: CrashArgs, ctx: ActionContext) -> dict[str, int]:
    scope.step("first", lambda: counters.bump(scope.flow_id, "first"))

    def slow() -> str:
        if counters.bump(scope.flow_id, "second") == 1:
            time.sleep(args.sleep_s)  # the worker is killed in here
        return "slow done"

    scope.step("second", slow)
    return {"first": counters.count(scope.flow_id, "first"), "second": counters.count(scope.flow_id, "second")}


class TimedArgs(BaseModel):
    timeout_s: float


timed = crux.flow("c-timed", args=TimedArgs)


@timed.handler
def run_timed(scope: FlowScope[TimedArgs], args: TimedArgs, ctx: ActionContext) -> None:
    scope.suspend("never", timeout=args.timeout_s, on_expired=lambda snap: counters.bump(snap.flow_id, "expired"))


class LaterArgs(BaseModel):
    key: str
    delay_s: float


@crux.action(name="c.later_target", observability_name="later target", args=LaterArgs)
def later_target(ctx: ActionContext, args: LaterArgs) -> float:
    counters.bump(args.key, "later")
    return time.time()


@crux.action(name="c.schedule_later", observability_name="schedule later", args=LaterArgs)
def schedule_later(ctx: ActionContext, args: LaterArgs) -> dict[str, Any]:
    result = ctx.crux.scheduler.run_after("much later", args.delay_s, later_target, args)
    return {"taskId": result.id, "scheduledAt": time.time()}


class ChildArgs(BaseModel):
    key: str
    sleep_s: float


@crux.action(name="c.slow_child", observability_name="slow child", args=ChildArgs)
def slow_child(ctx: ActionContext, args: ChildArgs) -> dict[str, int]:
    """Counts its runs under ``args.key``; the first one sleeps (a worker may be killed in there)."""
    runs = counters.bump(args.key, "child")
    if runs == 1:
        time.sleep(args.sleep_s)
    return {"runs": runs}


with_child = crux.flow("c-with-child", args=CrashArgs)


@with_child.handler
def run_with_child(scope: FlowScope[CrashArgs], args: CrashArgs, ctx: ActionContext) -> Any:
    return scope.step("child", lambda: ctx.crux.run_action("slow child", slow_child,
                                                           {"key": scope.flow_id, "sleep_s": args.sleep_s}))
