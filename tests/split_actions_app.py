"""A worker that serves actions only: it never imports a flow module (a split deployment)."""

from __future__ import annotations

import os

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_SPLIT_REDIS", "redis://127.0.0.1:6379/10")
ACTIONS_QUEUE = "crux-split-actions"

app = json_app("crux_split_actions", REDIS, ACTIONS_QUEUE)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=0.2, key_prefix="crux-s"))


class Work(BaseModel):
    n: int


@crux.action(name="split.double", observability_name="double", args=Work)
def double(ctx: ActionContext, args: Work) -> int:
    return args.n * 2
