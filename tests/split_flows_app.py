"""A worker that runs flows only; their durable children run on the actions worker's queue."""

from __future__ import annotations

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope
from tests.celery_apps import json_app
from tests.split_actions_app import ACTIONS_QUEUE, REDIS

FLOWS_QUEUE = "crux-split-flows"

app = json_app("crux_split_flows", REDIS, FLOWS_QUEUE)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=0.2, key_prefix="crux-s"))


class Numbers(BaseModel):
    n: int


doubling = crux.flow("split-doubling", args=Numbers)


@doubling.handler
def run_doubling(scope: FlowScope[Numbers], args: Numbers, ctx: ActionContext) -> int:
    doubled: int = scope.step("double", lambda: ctx.crux.run_action(
        "double elsewhere", "split.double", {"n": args.n}, queue=ACTIONS_QUEUE))
    return doubled + 1
