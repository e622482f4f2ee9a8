"""The chaos suite's Celery app: broker and flow store on a ``redis-server`` the suite starts on
a spare port (``CRUX_CHAOS_REDIS``). Broker settings are Celery's defaults (visibility timeout one
hour, kombu's restore interval), as a new user leaves them."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.counters import Counters

REDIS = os.environ["CRUX_CHAOS_REDIS"]
QUEUE = "crux-chaos"

app = json_app("crux_chaos", REDIS, QUEUE)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=0.2, key_prefix="crux-x", telemetry_enabled=False))
counters = Counters(REDIS)


class Job(BaseModel):
    sleep_s: float = 1.0


class Go(BaseModel):
    ok: bool = True


def _work(flow_id: str, sleep_s: float) -> float:
    counters.bump(flow_id, "work")
    time.sleep(sleep_s)
    return sleep_s


steady = crux.flow("x-steady", args=Job, signals={"go": Go})


@steady.handler
def run_steady(scope: FlowScope[Job], args: Job, ctx: ActionContext) -> int:
    scope.step("work", lambda: _work(scope.flow_id, args.sleep_s))
    scope.suspend("go")
    scope.step("finish", lambda: counters.bump(scope.flow_id, "finish"))
    return counters.count(scope.flow_id, "work")
