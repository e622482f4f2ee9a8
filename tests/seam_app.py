"""A Celery app for the extension seam's regression tests with subprocess prefork workers: its own
queue, its own Redis database (1) and key prefix, a 2 s flow lease (a killed worker's claims are
re-published about 3 s after its last heartbeat) and the broker's default visibility timeout (an
hour: within a test, only a claim brings back a message a killed worker had reserved)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import signals
from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.counters import Counters

REDIS = os.environ.get("CRUX_SEAM_REDIS", "redis://127.0.0.1:6379/1")
QUEUE = "crux-seam-tests"
PREFIX = "crux-seam"
SECRET = "vault-pass-7f3c9d21e4b84a6f"  # what a real flow reads from its vault (no default pattern matches it)
# a recovered retry still waits out its countdown (the re-publish keeps its ETA); far shorter than
# the visibility timeout (an hour), so within a test only a recovery runs the retry at all
RETRY_COUNTDOWN_S = 12

app = json_app("crux_seam", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix=PREFIX, flow_lease_s=2.0))
counters = Counters(REDIS)


class Empty(BaseModel):
    pass


class Nap(BaseModel):
    sleep_s: float


class Keyed(BaseModel):
    key: str


class VaultArgs(BaseModel):
    token: SecretStr


# -- 1. a durable child killed by its hard time limit -------------------------------------------------

@crux.action(name="seam.naps_past_its_limit", observability_name="naps past its limit", args=Nap, time_limit=1)
def naps_past_its_limit(ctx: ActionContext, args: Nap) -> str:
    time.sleep(args.sleep_s)  # the worker's main process kills the pool process after 1 s
    return "woke up"


time_limited = crux.flow("seam-time-limited", args=Empty)


@time_limited.handler
def run_time_limited(scope: FlowScope[Empty], args: Empty, ctx: ActionContext) -> dict[str, Any]:
    slept = scope.step("nap", lambda: ctx.crux.run_action("nap too long", naps_past_its_limit, Nap(sleep_s=30)))
    return {"nap": slept}


# -- 2. a durable child retried with a countdown -------------------------------------------------------

def received(task_id: str) -> int:
    return counters.count(task_id, "received")


def closed(task_id: str) -> int:
    return counters.count(task_id, "closed")


@crux.action(name="seam.retries_once", observability_name="retries once", args=Keyed)
def retries_once(ctx: ActionContext, args: Keyed) -> dict[str, int]:
    executions = counters.bump(args.key, "executions")
    if executions == 1:
        try:
            ctx.task.retry(countdown=RETRY_COUNTDOWN_S, max_retries=3)  # publishes the retry, raises
        finally:
            # the worker's main process has received (and claimed) the retry before this attempt
            # closes, as when the attempt's telemetry flush takes a moment: made certain here
            deadline = time.monotonic() + 10
            while received(str(ctx.request.id)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    return {"executions": executions}


retried = crux.flow("seam-retried", args=Empty)


@retried.handler
def run_retried(scope: FlowScope[Empty], args: Empty, ctx: ActionContext) -> Any:
    return scope.step("retried", lambda: ctx.crux.run_action(
        "retry once", retries_once, Keyed(key=scope.flow_id)))


def _count_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """The main process reserved a message of ``retries_once`` (after cruxcelery claimed it)."""
    if getattr(getattr(request, "task", None), "name", None) == retries_once.name:
        counters.bump(str(request.id), "received")


def _count_closed(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    """An attempt of ``retries_once`` closed (after cruxcelery's own close)."""
    if task_id is not None and getattr(sender, "name", None) == retries_once.name:
        counters.bump(task_id, "closed")


# connected after Crux(...) installed its handlers, so they run after them
signals.task_received.connect(_count_received, weak=False)
signals.task_postrun.connect(_count_closed, weak=False)


# -- 3. a durable child whose error names a secret of its args ----------------------------------------

@crux.action(name="seam.vault_refuses", observability_name="vault refuses", args=VaultArgs)
def vault_refuses(ctx: ActionContext, args: VaultArgs) -> None:
    raise PermissionError(f"the vault refused token {args.token.get_secret_value()}")


vault_flow = crux.flow("seam-vault", args=Empty)


@vault_flow.handler
def run_vault(scope: FlowScope[Empty], args: Empty, ctx: ActionContext) -> Any:
    return scope.step("unlock", lambda: ctx.crux.run_action(
        "unlock the vault", vault_refuses, VaultArgs(token=SecretStr(SECRET))))


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS)
