"""Settings of the Django example project (no database tables are needed)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "false").lower() == "true"  # a debug page would show the broker URL
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "cruxcelery.integrations.django",  # builds the Crux, autodiscovers <app>/flows.py
    "drafts",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "writersite.urls"
WSGI_APPLICATION = "writersite.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
USE_TZ = True

# Celery (read by writersite/celery.py through namespace="CELERY"): JSON only, as cruxcelery requires.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# cruxcelery: the Celery app, and any CRUX_* setting without its prefix (the environment's apply first).
CRUXCELERY = {
    "CELERY_APP": "writersite.celery:app",
    "REDIS_URL": REDIS_URL,
}

# Stand-ins for the project's own authentication and data: bearer token -> user, draft -> tenant.
DRAFTS_API_TOKENS = {
    "token-acme": {"user": "alice", "tenant": "acme"},
    "token-globex": {"user": "bob", "tenant": "globex"},
}
DRAFTS = {"d1": "acme", "d2": "acme", "g1": "globex"}
WRITER_SIGNATURE = "the Django example"
