"""The Django app ``cruxcelery.integrations.web.django``: add it to ``INSTALLED_APPS``.

Settings, in one namespace (every key optional)::

    CRUXCELERY = {
        "CELERY_APP": "mysite.celery:app",   # the project's Celery app (default: Celery's current app)
        "FLOWS_MODULE": "flows",             # autodiscovered in every installed app; None turns it off
        "REDIS_URL": "redis://...",          # any CRUX_* variable, without its prefix
        "KEY_PREFIX": "mysite",
    }

When Django is ready the app config builds one ``Crux`` for the project's Celery app (settings:
the environment's ``CRUX_*`` variables, overlaid with the namespace), then imports the ``flows``
module of every installed app, which defines flows and actions on it::

    # drafts/flows.py
    from cruxcelery.integrations.web.django import get_crux
    crux = get_crux()
    writer = crux.flow("writer", args=WriterArgs, signals={"approval": Approval})

The worker is the usual ``celery -A mysite worker -E``: Celery's Django fixup sets Django up,
which builds the ``Crux`` and imports the flows before the worker consumes anything.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any

from celery import Celery
from celery.utils.imports import symbol_by_name

try:
    import django  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"cruxcelery.integrations.web.django needs Django: pip install 'cruxcelery[django]' ({exc})"
    ) from exc

from cruxcelery import ConfigurationError, Crux
from cruxcelery.integrations.web.common import describe_flow, settings_from, signal_errors

__all__ = ["NAMESPACE", "autodiscover_flows", "describe_flow", "get_celery_app", "get_crux", "namespace",
           "reset", "setup", "signal_errors"]

NAMESPACE = "CRUXCELERY"
_OWN_KEYS = {"CELERY_APP", "FLOWS_MODULE"}
_lock = threading.RLock()
_crux: Crux | None = None


def namespace() -> dict[str, Any]:
    """``settings.CRUXCELERY`` (empty when unset)."""
    from django.conf import settings  # type: ignore[import-untyped]

    value = getattr(settings, NAMESPACE, None) or {}
    if not isinstance(value, dict):
        raise ConfigurationError(f"settings.{NAMESPACE} must be a dict, not {type(value).__name__}")
    return value


def _celery_app(configured: Any) -> Celery:
    if configured is None:
        from celery import current_app

        app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    elif isinstance(configured, str):
        try:
            app = symbol_by_name(configured)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"settings.{NAMESPACE}['CELERY_APP'] = {configured!r} cannot be imported: "
                                     f"{exc}; give 'package.module:app'") from exc
    else:
        app = configured
    if not isinstance(app, Celery):
        raise ConfigurationError(f"settings.{NAMESPACE}['CELERY_APP'] is not a Celery app: {app!r}")
    return app


def setup() -> Crux:
    """Build the ``Crux`` of the project's Celery app once (the app config's ``ready`` does)."""
    global _crux
    with _lock:
        if _crux is None:
            config = namespace()
            celery = _celery_app(config.get("CELERY_APP"))
            existing = Crux.for_app(celery)
            if isinstance(existing, Crux):
                _crux = existing
            else:
                crux_keys = {(key if key.startswith("CRUX_") else f"CRUX_{key}"): value
                             for key, value in config.items() if key not in _OWN_KEYS}
                _crux = Crux(celery, settings_from(crux_keys, where=f"settings.{NAMESPACE}"))
        return _crux


def get_crux() -> Crux:
    """The project's ``Crux`` (built on first use)."""
    return _crux if _crux is not None else setup()


def get_celery_app() -> Celery:
    app: Celery = get_crux().app
    return app


def autodiscover_flows(module: str | None = None) -> list[str]:
    """Import ``<app>.<module>`` (default ``flows``) of every installed app that has one."""
    from django.apps import apps  # type: ignore[import-untyped]
    from django.utils.module_loading import module_has_submodule  # type: ignore[import-untyped]

    name = module if module is not None else namespace().get("FLOWS_MODULE", "flows")
    if not name:
        return []
    imported: list[str] = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, name):
            import_module(f"{config.name}.{name}")
            imported.append(f"{config.name}.{name}")
    return imported


def reset() -> None:
    """Forget the ``Crux`` (tests that configure Django more than once)."""
    global _crux
    with _lock:
        if _crux is not None:
            _crux.close()
        _crux = None
