"""One error tree. ``CruxError`` is the root of everything cruxcelery raises on purpose."""

from __future__ import annotations


class CruxError(Exception):
    """Root of cruxcelery's errors."""


class ConfigurationError(CruxError):
    """Settings or the Celery app are not usable (for example, the app accepts pickle)."""


class InvalidArgs(CruxError, ValueError):
    """Action arguments failed validation. Raised at the caller (nothing is published) and in the
    worker (the task fails without retry)."""


class NotInAction(CruxError, RuntimeError):
    """A helper that needs an active Crux context was called outside one."""
