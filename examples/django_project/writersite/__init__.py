"""The Django example project. Its Celery app is imported here, as Celery's Django guide does,
so that ``celery -A writersite worker`` and the web process share it."""

from .celery import app as celery_app

__all__ = ["celery_app"]
