"""One error tree. ``CruxError`` is the root of everything cruxcelery raises on purpose."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class CruxError(Exception):
    """Root of cruxcelery's errors."""


class ConfigurationError(CruxError):
    """Settings or the Celery app are not usable (for example, the app accepts pickle)."""


class InvalidArgs(CruxError, ValueError):
    """Action arguments failed validation. Raised at the caller (nothing is published) and in the
    worker (the task fails without retry). ``errors`` holds pydantic's structured ``errors()``."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def structured_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's ``errors()`` as JSON-safe dicts (``loc``, ``msg``, ``type``; no input values,
    which may hold secrets)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)]


class NotInAction(CruxError, RuntimeError):
    """A helper that needs an active Crux context was called outside one."""


class StoreUnavailable(CruxError):
    """The flow store (Redis) could not be reached or refused the call; the cause is attached.
    Nothing was half-written: retry the call once Redis answers."""


class BrokerUnavailable(CruxError):
    """The Celery broker could not take a message; the cause is attached. What was stored stays:
    the sweeper publishes it once the broker answers."""
