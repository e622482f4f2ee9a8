"""The app the Flower test runs (``celery -A tests.flower_app worker -E`` and ``... flower``): an
action that records in Redis what it received (a ``SecretStr`` among its args), a flow that fails
and a flow that waits for a signal. Broker, results and flows on Redis database 5."""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_FLOWER_REDIS", "redis://127.0.0.1:6379/5")
QUEUE = os.environ.get("CRUX_TEST_QUEUE", "crux-flower")
SEEN_KEY = "flower-test:seen"

app = json_app("crux_flower", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-fl", sweep_interval_s=0.5))


class Credentials(BaseModel):
    user: str
    credential: SecretStr
    session_token: str
    note: str = ""


@crux.action(name="fl.use_credentials", observability_name="Use the credentials", args=Credentials)
def use_credentials(ctx: ActionContext, args: Credentials) -> dict[str, Any]:
    seen = {"user": args.user, "credential_type": type(args.credential).__name__,
            "credential": args.credential.get_secret_value(), "session_token": args.session_token,
            "run_id": ctx.run_id}
    redis.Redis.from_url(REDIS).set(f"{SEEN_KEY}:{args.user}", json.dumps(seen))
    return {"user": args.user}


class Job(BaseModel):
    job: str


doomed = crux.flow("fl-doomed", args=Job)


def explode_in_user_code(job: str) -> None:
    raise ValueError(f"the user's bug in {job}")


@doomed.handler
def run_doomed(scope: FlowScope[Job], args: Job, ctx: ActionContext) -> None:
    scope.step("prepare", lambda: {"job": args.job})
    explode_in_user_code(args.job)


class Go(BaseModel):
    go: bool = True


waiting = crux.flow("fl-waiting", args=Job, signals={"go": Go})


@waiting.handler
def run_waiting(scope: FlowScope[Job], args: Job, ctx: ActionContext) -> dict[str, Any]:
    scope.step("before", lambda: ctx.crux.run_action("use them", use_credentials, {
        "user": "flow", "credential": "sk-flow-secret-000", "session_token": "tok-flow-000"}))
    go = scope.suspend("go")
    return {"job": args.job, "go": go.go}
