"""A Celery app for the telemetry spool tests with subprocess workers: Redis database 7 (broker,
results and the spool), its own key prefix, a forwarder in every pool process that claims a dead
one's entries after 1 s. ``CRUX_DEVTOOLS_URL`` and ``CRUX_RECORDS_FILE`` come from the test."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_SPOOL_TEST_REDIS", "redis://127.0.0.1:6379/7")
QUEUE = os.environ.setdefault("CRUX_TEST_QUEUE", f"crux-spool-{os.getpid()}")
PREFIX = os.environ.get("CRUX_KEY_PREFIX", "crux-spool-test")
ADDED_KEY = f"{PREFIX}:added-s"  # per action: seconds from the body's return to the end of its flush

app = json_app("crux_spool", REDIS, QUEUE, worker_prefetch_multiplier=4, result_expires=600)
crux = Crux(app, CruxSettings.from_env(key_prefix=PREFIX, spool="on", forwarder_claim_idle_s=1.0))


class Empty(BaseModel):
    n: int = 0


class Credentials(BaseModel):
    user: str
    token: SecretStr


class Login(BaseModel):
    account: str
    credentials: Credentials


_returned: list[float] = []  # a pool process runs one action at a time


@crux.action(name="sp.noop", observability_name="spool no-op", args=Empty)
def noop(ctx: ActionContext, args: Empty) -> int:
    _returned.append(time.perf_counter())
    return os.getpid()


_flush = crux.flush


def _timed_flush(timeout_s: float | None = None) -> Any:
    """What the runtime added after the action's body returned: span and run end, the flush."""
    result = _flush(timeout_s)
    if _returned:
        added = time.perf_counter() - _returned.pop()
        app.backend.client.rpush(ADDED_KEY, f"{added:.6f}")  # type: ignore[attr-defined]
    return result


crux.flush = _timed_flush  # type: ignore[method-assign]


@crux.action(name="sp.leak", observability_name="leaks a secret", args=Login)
def leak(ctx: ActionContext, args: Login) -> None:
    token = args.credentials.token.get_secret_value()
    ctx.crux.event("login.attempt", {"detail": f"trying {token}"})
    raise PermissionError(f"login refused for {args.credentials.user} with token {token}")
