"""The app of the fault harness: one flow whose script touches every kind of write the flows package
makes (steps, a durable child, a signal with a timeout, a condition re-checked by a timer, the
end), run by subprocess prefork workers with the fault injector installed.

Its own Redis database, 14: broker, results, flow store (keys ``crux-fxs:*``), and the harness's
control plane and the scenario's witnesses (``crux-fx:*``). A 2 s flow lease and a 0.2 s sweep,
so recovery takes seconds."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.faults.injector import CONTROL_URL, install, unobserved

REDIS = os.environ.get("CRUX_FAULTS_REDIS", "redis://127.0.0.1:6379/14")
QUEUE = os.environ.get("CRUX_TEST_QUEUE", "crux-faults")
LEASE_S = 2.0
VISIBILITY_S = 6.0
PREFIX = "crux-fxs"

app = json_app(
    "crux_faults", REDIS, QUEUE, worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": VISIBILITY_S, "unacked_restore_interval": 1,
                              "unacked_restore_throttle": 1, "unacked_mutex_expire": 10},
)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix=PREFIX, flow_lease_s=LEASE_S,
                                       sweep_interval_s=0.2))
witness = redis.Redis.from_url(CONTROL_URL)

if os.environ.get("CRUX_FAULTS_INJECT") == "1":
    install(stall_s=LEASE_S * 2.5)


def ran(flow_id: str, what: str) -> None:
    """Count a body that ran; a body that runs although its result is already recorded is a
    violation the checker reports."""
    witness.hincrby(f"crux-fx:ran:{flow_id}", what, 1)


class Script(BaseModel):
    ready_at: float = 0.0  # epoch seconds: the condition ``later`` holds from then on


class Go(BaseModel):
    token: str


class ChildArgs(BaseModel):
    flow_id: str


@crux.action(name="fx.child", observability_name="fx child", args=ChildArgs)
def child(ctx: ActionContext, args: ChildArgs) -> dict[str, Any]:
    with unobserved():
        if "child" in script.snapshot(args.flow_id).completed_steps:
            ran(args.flow_id, "child-after-record")
        ran(args.flow_id, "child")
    return {"value": 7}


script = crux.flow("fx-script", args=Script, signals={"go": Go})


def _step_body(scope: FlowScope[Script], label: str) -> dict[str, str]:
    with unobserved():
        if label in script.snapshot(scope.flow_id).completed_steps:
            ran(scope.flow_id, f"{label}-after-record")
        ran(scope.flow_id, label)
    return {"step": label}


CALLER = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (Exception,), "retry_backoff": 0.2,
          "max_retries": 20}


@app.task(name="fx.start", **CALLER)
def start_script(flow_id: str, ready_at: float) -> str:
    """A caller that retries with the same idempotency key until ``start()`` answers."""
    return script.start({"ready_at": ready_at}, flow_id=flow_id, idempotency_key=flow_id)


@app.task(name="fx.signal", **CALLER)
def signal_script(flow_id: str, token: str) -> None:
    """A caller that retries the signal (with its id: delivered once) until it is stored."""
    script.signal(flow_id, "go", {"token": token}, signal_id=f"{flow_id}-go")


@script.handler
def run_script(scope: FlowScope[Script], args: Script, ctx: ActionContext) -> dict[str, Any]:
    first = scope.step("a", lambda: _step_body(scope, "a"))
    value = scope.step("child", lambda: ctx.crux.run_action("fx child", child, {"flow_id": scope.flow_id}))
    go = scope.suspend("go", timeout=600)
    scope.wait_until("later", lambda: time.time() >= args.ready_at, every=0.3)
    last = scope.step("b", lambda: _step_body(scope, "b"))
    return {"a": first["step"], "child": value["value"], "go": go.token, "b": last["step"]}
