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
- ``revoked`` / ``time_limit``: terminal errors (the main process decides them for a revoke with
  ``terminate=True`` and a hard time limit; a hard time limit with ``acks_on_timeout=False`` is
  requeued, so not terminal).
- ``worker_lost``: the process running the task died or was killed (SIGTERM, SIGKILL). In that
  process (``task_postrun`` with no state) it is not terminal: the worker requeues the message
  (``reject_on_worker_lost``) or the main process decides the end. The main process's
  ``WorkerLostError`` without a requeue is terminal. Never an ``ok``.

``autoretry_for`` is decided here exactly as Celery decides it (``celery.app.autoretry`` and
``Task.retry``): the exception matches ``autoretry_for``, not ``dont_autoretry_for``, and the
request has retries left. Inside the task function the exception is still the user's; Celery turns
it into ``Retry`` only after the function (and so cruxcelery's wrapper) has returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from celery.exceptions import (
    Ignore,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)

OutcomeKind = Literal["ok", "error", "retry", "replaced", "ignored", "revoked", "time_limit", "worker_lost"]
REPLACED_MESSAGE = "Replaced by new task"  # what Task.replace raises Ignore with (Celery 5.x)


class ControlFlow(BaseException):
    """Root of the unwinding signals of plug-ins (a flow suspending, cancelled, or losing its
    lease). Not an ``Exception``: user code cannot swallow it. ``span_status`` is how a span it
    unwinds ends: control flow is not an error."""

    span_status = "suspended"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    error: BaseException | None = None
    result: Any = None
    final: bool = True
    """False only for a ``worker_lost`` seen where the task ran: the message may run again."""

    @property
    def terminal(self) -> bool:
        """The task will not run again for this message: boundaries close, children report. A
        retry's close is told apart from the final close by this."""
        return self.kind not in ("retry", "replaced") and self.final

    @property
    def failed(self) -> bool:
        return self.kind in ("error", "revoked", "time_limit", "worker_lost")

    @property
    def span_status(self) -> str:
        if self.kind in ("ok", "ignored", "replaced"):
            return "ok"
        return self.error.span_status if isinstance(self.error, ControlFlow) else "error"

    @property
    def span_error(self) -> BaseException | None:
        return self.error if self.span_status == "error" else None


def ok(result: Any = None) -> Outcome:
    return Outcome("ok", None, result)


def classify(exc: BaseException | None, task: Any = None, request: Any = None, result: Any = None) -> Outcome:
    """The outcome of an execution that raised ``exc`` (``None``: it returned ``result``)."""
    if exc is None:
        return ok(result)
    if isinstance(exc, SystemExit | KeyboardInterrupt):  # the process is going away mid-task
        return interrupted(exc)
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


def interrupted(error: BaseException | None = None) -> Outcome:
    """The process running the task is going away mid-task (``task_postrun`` without a state): not
    terminal, since the worker requeues the message or its main process decides the end."""
    return Outcome("worker_lost", error, None, final=False)


def decided_by_worker(exc: BaseException, task: Any = None) -> Outcome:
    """An outcome the worker's main process decided (``task_failure`` or ``task_revoked`` there)."""
    if isinstance(exc, TaskRevokedError):
        return Outcome("revoked", exc)
    if isinstance(exc, TimeLimitExceeded):
        requeued = bool(getattr(task, "acks_late", False)) and not getattr(task, "acks_on_timeout", True)
        return Outcome("time_limit", exc, final=not requeued)
    if isinstance(exc, WorkerLostError):
        return Outcome("worker_lost", exc)
    return classify(exc, task)


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
