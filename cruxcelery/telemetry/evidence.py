"""Error evidence: the summary on a failing span's end, the ``exception`` event, and the
``error.stack`` / ``error.raw`` artifacts (with secrets redacted).

Secrets are redacted by key here (``redact``: values under secret-looking keys) and by value
(``redaction``): the summary's message directly, everything else when it goes through
``preview.json_safe`` on its way into a record."""

from __future__ import annotations

import re
import traceback
from typing import Any

from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.redaction import redact_text

_SECRET_KEY = re.compile(r"authorization|cookie|token|secret|password|api[ _-]?key", re.IGNORECASE)
REDACTED = "[REDACTED]"


def message(exc: BaseException) -> str:
    """``str(exc)``, or a description of it when the exception cannot render its own message."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"


def summary(exc: BaseException, category: str | None = None) -> dict[str, Any]:
    """The compact ``{message, name, category?, retryable?}`` kept on terminal records."""
    out: dict[str, Any] = {"message": redact_text(message(exc)) or type(exc).__name__, "name": type(exc).__name__}
    if category:
        out["category"] = category
    retryable = getattr(exc, "retryable", None)
    if isinstance(retryable, bool):
        out["retryable"] = retryable
    return out


def stack_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def otel_exception_attributes(exc: BaseException) -> dict[str, str] | None:
    """The message and stack for the OpenTelemetry twin's ``exception`` event, when redaction
    changes them (``None``: nothing to hide, let OpenTelemetry describe the exception itself)."""
    text, stack = message(exc), stack_text(exc)
    safe_message, safe_stack = redact_text(text), redact_text(stack)
    if safe_message == text and safe_stack == stack:
        return None
    return {"exception.message": safe_message, "exception.stacktrace": safe_stack}


def exception_event_attributes(exc: BaseException) -> dict[str, Any]:
    return {
        "exception.type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception.message": message(exc),
        "exception.stacktrace": stack_text(exc),
    }


def raw_error(exc: BaseException) -> dict[str, Any]:
    """``name``, ``message``, ``cause`` and the exception's own fields, secrets redacted."""
    custom = {k: v for k, v in vars(exc).items() if not k.startswith("_")} if hasattr(exc, "__dict__") else {}
    cause = exc.__cause__ or exc.__context__
    raw: dict[str, Any] = {
        "name": type(exc).__name__,
        "message": message(exc),
        "cause": raw_error(cause) if cause is not None and cause is not exc else None,
        **redact(custom),
    }
    return raw


def redact(value: Any) -> Any:
    """Replace values under secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return json_safe(value)
