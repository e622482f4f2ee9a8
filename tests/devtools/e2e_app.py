"""The reference app (``tasks/`` and ``flows/``) as the devtools end-to-end test runs it: on its
own queue (``CRUX_E2E_QUEUE``), plus the one action the reference app lacks, a child that hangs
until its worker is killed (it runs on ``CRUX_E2E_HANG_QUEUE``, served by a worker of its own)."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

import flows.writer  # noqa: F401  (registers the writer flow)
import tasks.research  # noqa: F401  (registers plan research and its children)
from cruxcelery import ActionContext
from tasks import app, crux

QUEUE = os.environ["CRUX_E2E_QUEUE"]
HANG_QUEUE = os.environ.get("CRUX_E2E_HANG_QUEUE", f"{QUEUE}-hang")
HANG_LEASE_S = 4.0
"""The doomed child's lease (``run_action(timeout_s=...)``): devtools shows it stale after this."""

app.conf.task_default_queue = QUEUE


class HangArgs(BaseModel):
    label: str


@crux.action(name="e2e.hang", observability_name="hang until killed", args=HangArgs)
def hang(ctx: ActionContext, args: HangArgs) -> None:
    time.sleep(600)  # the test kills this worker with SIGKILL long before


@crux.action(name="e2e.spawn_hang", observability_name="spawn a doomed child", root_primitive="agent.run",
             args=HangArgs)
def spawn_hang(ctx: ActionContext, args: HangArgs) -> str:
    ctx.crux.run_action("hang until killed", hang, {"label": args.label}, timeout_s=HANG_LEASE_S, queue=HANG_QUEUE)
    return "spawned"
