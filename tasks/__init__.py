"""The reference Celery app: ``celery -A tasks worker``; its flows are the package ``flows`` beside it.

The wheel ships this package as ``cruxcelery.examples`` (``celery -A cruxcelery.examples worker``,
what ``cruxcelery demo`` runs outside a checkout) and ``flows/`` inside it as
``cruxcelery.examples.flows`` (setup.py). So the app's modules import each other relatively, and
name the flows by where they are: ``flows`` in the checkout, ``.flows`` in the wheel.

Broker and backend come from ``CRUX_REDIS_URL`` (or ``REDIS_URL``), default the local Redis.
"""

from __future__ import annotations

import os

from celery import Celery

from cruxcelery import Crux

REDIS_URL = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

FLOWS = "flows" if __name__ == "tasks" else f"{__name__}.flows"

app = Celery(__name__, broker=REDIS_URL, backend=REDIS_URL,
             include=[f"{__name__}.research", f"{__name__}.writing", f"{__name__}.agent",
                      f"{FLOWS}.writer", f"{FLOWS}.digest"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
crux = Crux(app)
