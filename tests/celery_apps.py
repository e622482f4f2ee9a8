"""The Celery app setup the test apps share: JSON only, their own queue, no root-logger hijack."""

from __future__ import annotations

from typing import Any

from celery import Celery


def json_app(name: str, redis_url: str, queue: str, **conf: Any) -> Celery:
    app = Celery(name, broker=redis_url, backend=redis_url)
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        **conf,
    )
    return app
