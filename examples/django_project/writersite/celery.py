"""The project's Celery app: ``celery -A writersite worker -E -l INFO``.

Celery settings are the ``CELERY_*`` Django settings; the app ``cruxcelery.integrations.django``
builds the ``Crux`` for this app (``CRUXCELERY["CELERY_APP"]``) and imports ``drafts/flows.py``
when Django is ready (the worker's Django fixup sets Django up before it consumes)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "writersite.settings")

app = Celery("writersite")
app.config_from_object("django.conf:settings", namespace="CELERY")
