"""Flow errors, and the control-flow signals the engine throws to unwind user code.

``FlowError`` and its subclasses are ordinary errors (``CruxError`` -> ``Exception``). ``FlowControl``
and its subclasses derive from ``BaseException`` on purpose: a bare ``except Exception`` in a user's
step must not swallow a suspension, a cancellation, a child wait or an expiry.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cruxcelery.core.outcomes import ControlFlow
from cruxcelery.errors import CruxError, structured_errors


class FlowError(CruxError):
    """Root of the flow errors."""


class FlowNotFound(FlowError, KeyError):
    """No snapshot is stored for this flow id."""

    def __init__(self, flow_id: str) -> None:
        super().__init__(flow_id)
        self.flow_id = flow_id

    def __str__(self) -> str:
        return f"flow {self.flow_id!r} not found"


class FlowNotWaiting(FlowError):
    """The flow is finished (or otherwise not able to take this signal)."""


class IdempotencyConflict(FlowError, ValueError):
    """``start()`` with an idempotency key (or a flow id) that names a flow started with another
    input: nothing is started, and the existing flow is not returned."""


class SignalRejected(FlowError, ValueError):
    """A signal was refused: its payload failed validation (``errors`` holds pydantic's structured
    ``errors()``), is not JSON or is too large, or the flow declares no signal of that name."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    @classmethod
    def from_validation(cls, name: str, flow_id: str, exc: ValidationError) -> SignalRejected:
        return cls(f"signal {name!r} for flow {flow_id}: {exc}", structured_errors(exc))


class FlowDeterminismError(FlowError):
    """On replay, the handler's steps changed name or order compared with the snapshot."""


class InvalidFlowId(FlowError, ValueError):
    """A flow id, flow name, signal name, step id or idempotency key is not a valid key part."""


class InvalidCursor(FlowError, ValueError):
    """A ``list_flows`` cursor was not produced by ``list_flows``."""


class FlowControl(ControlFlow):
    """Root of the engine's unwinding signals. Not an ``Exception``: user code cannot swallow it.
    ``span_status`` is how a span this unwinds ends (control flow is not an error)."""

    span_status = "suspended"


class VersionConflict(FlowControl):
    """The stored snapshot's version is not the one the writer read: someone else wrote first."""

    span_status = "cancelled"

    def __init__(self, flow_id: str, expected: int, actual: int | None) -> None:
        super().__init__(f"flow {flow_id!r}: expected version {expected}, stored version is {actual}")
        self.flow_id = flow_id
        self.expected = expected
        self.actual = actual


class LeaseLost(FlowControl):
    """The execution lease expired or was taken by another execution: this one stops."""

    span_status = "cancelled"


class FlowSuspended(FlowControl):
    """The flow suspended (on a signal or a condition); the current execution ends."""


class FlowCancelled(FlowControl):
    """The flow was cancelled; the current execution ends."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason

    span_status = "cancelled"


class FlowWaiting(FlowControl):
    """The flow waits on a child task; the current execution ends and frees the worker."""


class FlowExpired(FlowControl):
    """A suspended flow's timeout passed before a signal arrived."""

    span_status = "cancelled"


class DuplicateStep(FlowError, ValueError):
    """Two steps of one flow share a label."""


class StepFailed(FlowError):
    """A step failed after its last attempt and had no fallback."""


class FlowTaskFailed(FlowError):
    """Raised by a flow's Celery task after the engine recorded that the flow ended ``failed``, so
    the task ends FAILURE (in Flower too) with the user's error chained as its cause. The failure
    is already durable: nothing retries it and recovery does not treat it as an interruption."""

    def __init__(self, message: str, flow_id: str | None = None) -> None:
        super().__init__(message)
        self.flow_id = flow_id


class ChildFailed(FlowError):
    """The child task a durable step waited on failed."""
