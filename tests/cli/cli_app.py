"""The app the CLI tests drive (``--app tests.cli.cli_app``): its own Redis database (4), queue and
key prefix; one flow with a step, a suspend on a declared signal and a durable child."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app

REDIS = "redis://127.0.0.1:6379/4"
QUEUE = f"crux-cli-tests-{os.getpid()}"
PREFIX = "crux-cli"

app = json_app("crux_cli_tests", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(key_prefix=PREFIX, flush_timeout_s=1.0))

FAILING: set[str] = set()
"""Draft ids whose publish fails (the test process and its in-thread worker share it)."""
PLANNED: list[str] = []
"""Every run of the ``plan`` step (a retried flow must not plan again)."""


class DraftArgs(BaseModel):
    draft_id: str


class Approval(BaseModel):
    approved: bool
    note: str = ""


@crux.action(name="cli.publish", observability_name="publish draft", args=DraftArgs)
def publish(ctx: ActionContext, args: DraftArgs) -> dict[str, Any]:
    if args.draft_id in FAILING:
        raise RuntimeError(f"the CMS refused draft {args.draft_id}")
    return {"published": args.draft_id}


review = crux.flow("cli-review", args=DraftArgs, signals={"approval": Approval})


@review.handler
def run_review(scope: FlowScope[DraftArgs], args: DraftArgs, ctx: ActionContext) -> Any:
    def plan() -> dict[str, str]:
        PLANNED.append(scope.flow_id)
        return {"draft": args.draft_id}

    scope.step("plan", plan)
    approval = scope.suspend("approval", timeout="1h")
    if not approval.approved:
        scope.cancel(f"rejected: {approval.note}")
    return scope.step("publish", lambda: ctx.crux.run_action("publish draft", publish, {"draft_id": args.draft_id}))
