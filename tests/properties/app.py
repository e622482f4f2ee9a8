"""The Celery app of the bad-input suite: Redis database 14 (broker, results and flow store), its
own queue and key prefix, a small ``CRUX_SIGNAL_MAX_BYTES`` so the size cap is cheap to reach.

Flows:

- ``p-declared``: declares the signal ``approval`` (a model); waits for it.
- ``p-free``: declares no signal; waits for ``anything`` with no schema.
- ``p-values``: looks its behaviour up in ``VALUES`` (this process's memory: the in-thread worker
  shares it) under the token in its input, then returns a value from a step, returns it from the
  handler, or cancels with it. So values JSON cannot carry (lone surrogates, bytes, NaN, deep
  nesting, objects) reach the engine the way user code would hand them over.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from cruxcelery.core.context import current
from cruxcelery.testing import MemorySink
from tests.celery_apps import json_app

DB = 14
REDIS = f"redis://127.0.0.1:6379/{DB}"
QUEUE = f"crux-props-{os.getpid()}"
PREFIX = "crux-p"
SIGNAL_MAX_BYTES = 2048

app = json_app("crux_props", REDIS, QUEUE, result_expires=60)
crux = Crux(app, CruxSettings(redis_url=REDIS, key_prefix=PREFIX, flush_timeout_s=1.0,
                              signal_max_bytes=SIGNAL_MAX_BYTES, spool="off", forwarder="off",
                              sweep_interval_s=1.0))
SINK = MemorySink()
crux.add_exporter(SINK)


class Approval(BaseModel):
    approved: bool
    note: str = ""


class Token(BaseModel):
    token: str = ""


declared = crux.flow("p-declared", args=Token, signals={"approval": Approval})


@declared.handler
def run_declared(scope: FlowScope[Token], args: Token, ctx: ActionContext) -> Any:
    return scope.suspend("approval").model_dump()


free = crux.flow("p-free", args=Token)


@free.handler
def run_free(scope: FlowScope[Token], args: Token, ctx: ActionContext) -> Any:
    return scope.suspend("anything")


VALUES: dict[str, tuple[str, Any]] = {}
"""token -> (mode, value): ``step`` (a step returns it), ``return`` (the handler returns it),
``cancel`` (``scope.cancel(value)``), ``raise`` (the handler raises it, or a ``RuntimeError`` of it)."""

values = crux.flow("p-values", args=Token)


@values.handler
def run_values(scope: FlowScope[Token], args: Token, ctx: ActionContext) -> Any:
    mode, value = VALUES[args.token]
    if mode == "step":
        return {"step": scope.step("produce", lambda: value)}
    if mode == "cancel":
        scope.cancel(value)
    if mode == "raise":
        raise value if isinstance(value, BaseException) else RuntimeError(value)
    return value


class Unprintable(Exception):
    """An exception whose message cannot even be read."""

    def __str__(self) -> str:
        raise ValueError("no message for you")


@crux.action(name="p.echo", observability_name="echo")
def echo(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    active = current()
    assert active is not None
    return {"runId": active.run.run_id, "operationId": active.run.operation_id, "traceId": active.run.trace_id}
