"""The app the secret scan runs (``celery -A tests.secret_scan_app worker -E`` and ``... flower``):
an action that fails with its ``SecretStr`` key in its message in every form a client library might
print it, and a flow whose step calls that action as a durable child. Everything on Redis
database 13."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app

REDIS = "redis://127.0.0.1:6379/13"
QUEUE = os.environ.get("CRUX_TEST_QUEUE", "crux-secret-scan")
KEY = "pk-live/9f'2c\"4e+7a=b81d"  # no default pattern knows it; repr, JSON and URL forms all differ

app = json_app("crux_secret_scan", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-ss", sweep_interval_s=0.5))


class ApiKey(BaseModel):
    key: SecretStr


@crux.action(name="ss.call_the_api", observability_name="Call the API", args=ApiKey)
def call_the_api(ctx: ActionContext, args: ApiKey) -> None:
    """Fails with the key in its message: plain, repr, JSON, URL-encoded (both ways) and base64."""
    key = args.key.get_secret_value()
    raise PermissionError(f"401 for url: https://api.example/v1?key={quote(key, safe='')}&k={quote_plus(key)} "
                          f"(key {key!r}, body {json.dumps({'key': key})}, "
                          f"basic {base64.b64encode(key.encode()).decode()}, plain {key})")


class Job(BaseModel):
    job: str


calls_the_api = crux.flow("ss-calls-the-api", args=Job)


@calls_the_api.handler
def run_calls_the_api(scope: FlowScope[Job], args: Job, ctx: ActionContext) -> None:
    scope.step("call", lambda: ctx.crux.run_action("call the API", call_the_api, {"key": KEY}))


class KeyedJob(BaseModel):
    job: str
    key: SecretStr


holds_the_key = crux.flow("ss-holds-the-key", args=KeyedJob)


@holds_the_key.handler
def run_holds_the_key(scope: FlowScope[KeyedJob], args: KeyedJob, ctx: ActionContext) -> None:
    """Its input holds the key; a step fails with it in the message, then the handler does."""
    key = args.key.get_secret_value()

    def call() -> None:
        raise PermissionError(f"401 for url: https://api.example/v1?key={quote(key, safe='')} (key {key!r})")

    scope.step("call", call, fallback=lambda: {"fallback": True})
    raise RuntimeError(f"gave up on key {key} ({base64.b64encode(key.encode()).decode()})")


sees_the_key = crux.flow("ss-sees-the-key", args=KeyedJob)


@sees_the_key.handler
def run_sees_the_key(scope: FlowScope[KeyedJob], args: KeyedJob, ctx: ActionContext) -> dict[str, bool]:
    return {"real": args.key.get_secret_value() == KEY}
