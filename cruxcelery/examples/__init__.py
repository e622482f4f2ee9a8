"""The demo app shipped with the package: ``celery -A cruxcelery.examples worker``, and what
``cruxcelery demo`` runs when the working directory has no ``tasks`` app. A port of the
repository's reference app (``tasks/`` and ``flows/writer.py``) that works from a ``pip install``.

Broker, backend and flow store come from ``CRUX_REDIS_URL`` (or ``REDIS_URL``), default the local
Redis."""

from __future__ import annotations

import os

from celery import Celery

from cruxcelery import Crux

REDIS_URL = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

app = Celery("cruxcelery.examples", broker=REDIS_URL, backend=REDIS_URL,
             include=["cruxcelery.examples.research", "cruxcelery.examples.writing", "cruxcelery.examples.agent",
                      "cruxcelery.examples.writer"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
crux = Crux(app)

__all__ = ["REDIS_URL", "app", "crux"]
