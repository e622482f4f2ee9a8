"""The reference Celery app: ``celery -A tasks worker``.

Broker and backend come from ``CRUX_REDIS_URL`` (or ``REDIS_URL``), default the local Redis.
"""

from __future__ import annotations

import os

from celery import Celery

from cruxcelery import Crux

REDIS_URL = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

app = Celery("tasks", broker=REDIS_URL, backend=REDIS_URL,
             include=["tasks.research", "tasks.writing", "tasks.agent", "flows.writer", "flows.digest"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
crux = Crux(app)
