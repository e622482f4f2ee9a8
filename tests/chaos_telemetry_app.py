"""The chaos suite's telemetry app: a no-op action on Redis 127.0.0.1:6379 database 2, telemetry on,
``CRUX_DEVTOOLS_URL``, ``CRUX_SPOOL``, ``CRUX_KEY_PREFIX`` and ``CRUX_RECORDS_FILE`` from the test
(one worker per delivery path). Every execution's time, from ``task_prerun`` to ``task_postrun``
(the action's flush in its ``finally`` included), is pushed to ``{prefix}:timings`` as
``"<phase> <seconds>"``."""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import task_postrun, task_prerun
from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_CHAOS_DB2", "redis://127.0.0.1:6379/2")
QUEUE = os.environ.setdefault("CRUX_TEST_QUEUE", f"crux-chaos-tel-{os.getpid()}")
PREFIX = os.environ.get("CRUX_KEY_PREFIX", "crux-ct")
TIMINGS_KEY = f"{PREFIX}:timings"

app = json_app("crux_chaos_telemetry", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(key_prefix=PREFIX))


class Beat(BaseModel):
    phase: str
    n: int = 0


_started: dict[str, float] = {}
_phases: dict[str, str] = {}


@crux.action(name="ct.noop", observability_name="chaos no-op", args=Beat)
def noop(ctx: ActionContext, args: Beat) -> None:
    _phases[str(ctx.request.id)] = args.phase


@task_prerun.connect
def _started_at(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _timed(task_id: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id or "", None)
    phase = _phases.pop(task_id or "", None)
    if started is not None and phase is not None:
        app.backend.client.rpush(TIMINGS_KEY, f"{phase} {time.perf_counter() - started:.6f}")  # type: ignore[attr-defined]
