"""The worker entry point of the Flask example: ``celery -A examples.flask_app.worker worker -E``.

Builds the Flask app (so the flows are defined and tasks run in its app context) and exposes
its Celery app as ``celery``."""

from __future__ import annotations

from .app import create_app

flask_app = create_app()
celery = flask_app.extensions["cruxcelery"].celery
