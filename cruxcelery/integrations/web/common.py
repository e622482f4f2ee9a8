"""What the Flask and Django integrations share: settings from a framework's configuration, and
the JSON a web endpoint returns for a flow or a refused signal. Imports no web framework."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from cruxcelery import ConfigurationError, CruxSettings, FlowSnapshot, SignalRejected

__all__ = ["JSON_ONLY", "celery_conf_from", "describe_flow", "setting_names", "settings_from", "signal_errors",
           "validation_errors"]

JSON_ONLY: dict[str, Any] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "broker_connection_retry_on_startup": True,
}
"""Celery defaults the integrations apply unless the configuration says otherwise (cruxcelery is
JSON-only: ``Crux(app)`` refuses an app that accepts pickle)."""

_ENV_NAMES = {"telemetry_enabled": "TELEMETRY"}  # the fields whose variable is not CRUX_<FIELD>


def setting_names() -> set[str]:
    """Every ``CRUX_*`` variable ``CruxSettings`` reads."""
    return {"CRUX_" + _ENV_NAMES.get(name, name.upper()) for name in CruxSettings.model_fields}


def _as_env(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def settings_from(config: Mapping[str, Any], *, where: str = "the configuration") -> CruxSettings:
    """``CruxSettings`` from the environment overlaid with the ``CRUX_*`` keys of ``config`` (a
    Flask config, or Django's ``CRUXCELERY`` with the prefix added). An unknown ``CRUX_*`` key is
    a ``ConfigurationError``: a misspelt setting must not be silently ignored."""
    known = setting_names()
    given = {key: value for key, value in config.items() if key.startswith("CRUX_") and value is not None}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigurationError(f"unknown cruxcelery settings in {where}: {', '.join(unknown)}; "
                                 f"the settings are {', '.join(sorted(known))} (see cruxcelery/settings.py)")
    environ = {**os.environ, **{key: _as_env(value) for key, value in given.items()}}
    return CruxSettings.from_env(environ)


def celery_conf_from(config: Mapping[str, Any], settings: CruxSettings | None = None,
                     namespace: str = "CELERY") -> dict[str, Any]:
    """Celery settings from a framework's configuration: a ``CELERY`` mapping of Celery's own
    (lowercase) setting names, then every ``CELERY_<NAME>`` key as ``<name>``; the JSON-only
    defaults where nothing is said; broker and result backend default to ``CRUX_REDIS_URL``."""
    conf: dict[str, Any] = dict(JSON_ONLY)
    nested = config.get(namespace)
    if isinstance(nested, Mapping):
        conf.update({str(key).lower(): value for key, value in nested.items()})
    prefix = namespace + "_"
    conf.update({key[len(prefix):].lower(): value for key, value in config.items()
                 if isinstance(key, str) and key.startswith(prefix)})
    redis_url = settings.redis_url if settings is not None else None
    for key in ("broker_url", "result_backend"):
        if redis_url and not conf.get(key):
            conf[key] = redis_url
    return conf


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's per-field errors as JSON (``loc``, ``msg``, ``type``; no input values)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)]


def signal_errors(exc: SignalRejected) -> dict[str, Any]:
    """The body of a 400 for a refused signal: the message and pydantic's per-field errors."""
    return {"error": "signal rejected", "detail": str(exc), "errors": exc.errors}


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def describe_flow(snapshot: FlowSnapshot) -> dict[str, Any]:
    """What a ``GET /flows/<id>`` endpoint shows: status, steps (in order, with durations and
    attempts), what the flow waits for (with the signal's JSON schema), its result or error."""
    waiting = snapshot.waiting
    return {
        "flowId": snapshot.flow_id,
        "name": snapshot.name,
        "status": snapshot.status,
        "suspendedAt": snapshot.suspended_at,
        "waitingFor": None if waiting is None else {
            "kind": waiting.kind, "name": waiting.name, "schema": waiting.schema_, "timeoutAt": waiting.timeout_at,
        },
        "steps": [{"name": name, "durationMs": record.duration_ms, "attempts": record.attempts,
                   "completedAt": record.completed_at}
                  for name in snapshot.step_order if (record := snapshot.completed_steps.get(name)) is not None],
        "output": _jsonable(snapshot.output) if snapshot.status == "completed" else None,
        "error": _jsonable(snapshot.error),
        "cancelReason": snapshot.cancel_reason,
        "rejectedSignals": snapshot.rejected_signals,
        "createdAt": snapshot.created_at,
        "updatedAt": snapshot.updated_at,
    }
