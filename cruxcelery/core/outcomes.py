"""How one Celery execution ended, classified once for spans, runs, boundaries and durable children.

- ``ok``: the task returned. Span ok; an owned run ends ok; the boundary completes; a durable
  child reports its result.
- ``error``: any other exception, and ``Reject(requeue=False)``. Span error; the run ends error;
  the boundary fails; a durable child reports the failure.
- ``retry``: ``self.retry``, ``autoretry_for`` with retries left, ``Reject(requeue=True)``. Span
  error; the run suspends; the boundary stays open; a durable child reports nothing yet.
- ``replaced``: ``self.replace``. Span ok with a ``replacedBy`` event; the run suspends and the
  replacement (same task id, same envelope) resumes it, acknowledges the boundary and reports.
- ``ignored``: ``Ignore``. Span ok; the run ends ok; the boundary completes; reports ``None``.
- ``revoked`` / ``time_limit``: terminal errors.

``autoretry_for`` is decided here exactly as Celery decides it (``celery.app.autoretry`` and
``Task.retry``): the exception matches ``autoretry_for``, not ``dont_autoretry_for``, and the
request has retries left. Inside the task function the exception is still the user's; Celery turns
it into ``Retry`` only after the function (and so cruxcelery's wrapper) has returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded

OutcomeKind = Literal["ok", "error", "retry", "replaced", "ignored", "revoked", "time_limit"]
REPLACED_MESSAGE = "Replaced by new task"  # what Task.replace raises Ignore with (Celery 5.x)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    error: BaseException | None = None
    result: Any = None

    @property
    def terminal(self) -> bool:
        """The task will not run again for this message: boundaries close, children report."""
        return self.kind not in ("retry", "replaced")

    @property
    def failed(self) -> bool:
        return self.kind in ("error", "revoked", "time_limit")

    @property
    def span_status(self) -> str:
        if self.kind in ("ok", "ignored", "replaced"):
            return "ok"
        status = getattr(self.error, "crux_span_status", None)  # engine control flow is not an error
        return status if isinstance(status, str) else "error"

    @property
    def span_error(self) -> BaseException | None:
        return self.error if self.span_status == "error" else None


def ok(result: Any = None) -> Outcome:
    return Outcome("ok", None, result)


def classify(exc: BaseException | None, task: Any = None, request: Any = None, result: Any = None) -> Outcome:
    """The outcome of an execution that raised ``exc`` (``None``: it returned ``result``)."""
    if exc is None:
        return ok(result)
    if isinstance(exc, Retry):
        return Outcome("retry", exc)
    if isinstance(exc, Reject):
        return Outcome("retry" if getattr(exc, "requeue", False) else "error", exc)
    if isinstance(exc, Ignore):
        return Outcome("replaced" if str(exc) == REPLACED_MESSAGE else "ignored", exc)
    if isinstance(exc, TaskRevokedError):
        return Outcome("revoked", exc)
    if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded) and not _autoretried(exc, task, request):
        return Outcome("time_limit", exc)
    if _autoretried(exc, task, request):
        return Outcome("retry", exc)
    return Outcome("error", exc)


def _autoretried(exc: BaseException, task: Any, request: Any) -> bool:
    """Whether Celery's autoretry wrapper will turn ``exc`` into a retry."""
    if task is None or not isinstance(exc, Exception):
        return False
    autoretry_for = tuple(getattr(task, "autoretry_for", ()) or ())
    if not autoretry_for or not isinstance(exc, autoretry_for):
        return False
    dont = tuple(getattr(task, "dont_autoretry_for", ()) or ())
    if dont and isinstance(exc, dont):
        return False
    if request is None or getattr(request, "called_directly", True):
        return False
    retry_kwargs = getattr(task, "retry_kwargs", None) or {}
    max_retries = retry_kwargs.get("max_retries", getattr(task, "max_retries", None))
    retries = int(getattr(request, "retries", 0) or 0)
    return max_retries is None or retries + 1 <= int(max_retries)
