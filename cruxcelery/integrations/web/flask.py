"""Flask extension: ``CruxCelery(app)`` or ``CruxCelery()`` + ``init_app(app)``.

``init_app`` binds a Celery app and a ``Crux`` to the Flask app's configuration:

- ``CRUX_*`` keys are cruxcelery settings (the environment's ``CRUX_*`` variables apply first;
  an unknown ``CRUX_*`` key is a ``ConfigurationError``);
- ``CELERY_<NAME>`` keys (and a ``CELERY`` mapping) are Celery settings (``CELERY_BROKER_URL`` ->
  ``broker_url``); JSON-only serializers unless said otherwise; broker and result backend default
  to ``CRUX_REDIS_URL``.

Every task of that Celery app (actions, flow executions, plain tasks) runs inside the Flask
app's application context, on workers too: ``flask.current_app`` and the app's
``teardown_appcontext`` handlers work in tasks. ``crux_celery.celery`` / ``.crux`` are the
current Flask app's (or, outside an app context, the most recently initialised app's).

Define flows and actions once ``init_app`` ran (they are bound to that ``Crux``), in the app
factory or a module it imports, and point the worker at a module that builds the app::

    # worker.py
    flask_app = create_app()
    celery = flask_app.extensions["cruxcelery"].celery      # celery -A worker worker -E
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task, signals

try:
    from flask import Flask, current_app, has_app_context
    from flask.ctx import AppContext
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"cruxcelery.integrations.web.flask needs Flask: pip install 'cruxcelery[flask]' ({exc})"
    ) from exc

from cruxcelery import ConfigurationError, Crux, CruxSettings
from cruxcelery.integrations.web.common import celery_conf_from, describe_flow, settings_from, signal_errors

__all__ = ["EXTENSION_KEY", "CruxCelery", "CruxCeleryState", "describe_flow", "signal_errors"]

EXTENSION_KEY = "cruxcelery"


@dataclass(frozen=True)
class CruxCeleryState:
    """What ``init_app`` binds to one Flask app: ``app.extensions["cruxcelery"]``."""

    flask_app: Flask
    celery: Celery
    crux: Crux


class CruxCelery:
    """The Flask extension. ``celery=`` binds an existing Celery app (its configuration is
    updated from Flask's); by default ``init_app`` creates one named after the Flask app.
    ``settings=`` replaces the ``CRUX_*`` configuration entirely."""

    def __init__(self, app: Flask | None = None, *, celery: Celery | None = None,
                 settings: CruxSettings | None = None) -> None:
        self._celery = celery
        self._settings = settings
        self._last: CruxCeleryState | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(f"cruxcelery is already initialised for the Flask app {app.name!r}")
        config: Mapping[str, Any] = app.config
        settings = self._settings or settings_from(config, where=f"the config of the Flask app {app.name!r}")
        celery = self._celery or Celery(app.import_name)
        if Crux.for_app(celery) is not None:
            raise ConfigurationError("this Celery app already has a Crux: one CruxCelery per Celery app")
        celery.conf.update(celery_conf_from(config, settings))
        crux = Crux(celery, settings)
        _tasks_in_app_context(app, celery)
        state = CruxCeleryState(flask_app=app, celery=celery, crux=crux)
        app.extensions[EXTENSION_KEY] = state
        self._last = state

    def state(self, app: Flask | None = None) -> CruxCeleryState:
        """The binding of ``app`` (default: the current Flask app, else the last initialised)."""
        found: Any
        if app is not None:
            found = app.extensions.get(EXTENSION_KEY)
        elif has_app_context():
            found = current_app.extensions.get(EXTENSION_KEY)
        else:
            found = self._last
        if not isinstance(found, CruxCeleryState):
            raise ConfigurationError("cruxcelery is not initialised for this Flask app: call init_app(app) first")
        return found

    @property
    def celery(self) -> Celery:
        return self.state().celery

    @property
    def crux(self) -> Crux:
        return self.state().crux


def _tasks_in_app_context(app: Flask, celery: Celery) -> None:
    """Push an app context for every task of ``celery`` (``task_prerun``), pop it when the task
    ends (``task_postrun``, sent on success and failure alike)."""
    pushed: dict[tuple[str, int], AppContext] = {}
    lock = threading.Lock()

    def push(sender: Task[Any, Any] | None = None, task_id: str | None = None, **_: Any) -> None:
        if sender is None or task_id is None or sender.app is not celery:
            return
        context = app.app_context()
        context.push()
        with lock:
            pushed[(task_id, threading.get_ident())] = context

    def pop(sender: Task[Any, Any] | None = None, task_id: str | None = None, **_: Any) -> None:
        if task_id is None:
            return
        with lock:
            context = pushed.pop((task_id, threading.get_ident()), None)
        if context is not None:
            context.pop()

    signals.task_prerun.connect(push, weak=False)
    signals.task_postrun.connect(pop, weak=False)
