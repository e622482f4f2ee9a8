"""Child-task boundaries: the parent's ``runtime.celery.task`` (or ``.schedule``) span and its
``requested`` event; the child's ``received`` and ``completed`` / ``failed`` acknowledgements."""

from __future__ import annotations

import time
from typing import Any, Literal

from cruxcelery.core.context import ActiveContext
from cruxcelery.core.envelope import Envelope, clip
from cruxcelery.telemetry import evidence, ids
from cruxcelery.telemetry.spans import DETAIL, CruxSpan, Segment

REQUESTED = "runtime.celery.boundary.requested"
RECEIVED = "runtime.celery.boundary.received"
COMPLETED = "runtime.celery.boundary.completed"
FAILED = "runtime.celery.boundary.failed"

TASK_PRIMITIVE = "runtime.celery.task"
SCHEDULE_PRIMITIVE = "runtime.celery.schedule"
LEASE_MARGIN_S = 60.0

BoundaryKind = Literal["task", "schedule"]


def lease_seconds(task: Any, default_s: float) -> float:
    """The task's hard time limit plus a margin, else the default (11 minutes)."""
    limit = getattr(task, "time_limit", None)
    return float(limit) + LEASE_MARGIN_S if limit else default_s


def request(
    ctx: ActiveContext, label: str, task_name: str, kind: BoundaryKind, lease_s: float,
    extra: dict[str, Any] | None = None, envelope_fields: dict[str, Any] | None = None,
    deadline: bool = False,
) -> tuple[CruxSpan, Envelope]:
    """Open the boundary span under the active context and emit ``requested``. Returns the span
    and the continuation envelope the child must carry. With ``deadline`` the lease is also the
    span's ``deadlineAt``."""
    primitive = TASK_PRIMITIVE if kind == "task" else SCHEDULE_PRIMITIVE
    lease_at = time.time() + lease_s
    span = ctx.segment.start_span(
        label, primitive, parent=ctx.parent, flow_id=ctx.flow_id, deadline_at=lease_at if deadline else None,
        attributes={**DETAIL, "taskName": task_name, **(extra or {})},
    )
    boundary = ids.boundary_id()
    span.event(REQUESTED, {
        "boundaryId": boundary, "boundarySpanId": span.span_id, "boundaryKind": kind,
        "boundaryLabel": label, "taskName": task_name, "leaseExpiresAt": ids.iso_ms(lease_at),
    })
    envelope = ctx.envelope(
        parent_span_id=span.span_id, boundary_id=boundary, boundary_started_at=span.started_at,
        lease_expires_at=lease_at, label=clip(label), **(envelope_fields or {}),
    )
    return span, envelope


def received(segment: Segment, envelope: Envelope, task_name: str, task_id: str | None,
             attempt: int) -> None:
    if envelope.boundary_id is None:
        return
    segment.span_event(envelope.parent_span_id, RECEIVED, {
        "boundaryId": envelope.boundary_id, "taskName": task_name, "taskId": task_id, "attempt": attempt,
    })


def finished(segment: Segment, envelope: Envelope, status: str, error: BaseException | None) -> None:
    """``completed`` (with status) or ``failed`` (with the error), then the boundary span's end."""
    if envelope.boundary_id is None:
        return
    if error is None:
        segment.span_event(envelope.parent_span_id, COMPLETED,
                           {"boundaryId": envelope.boundary_id, "status": status})
        segment.span_end(envelope.parent_span_id, envelope.boundary_started_at or time.time(), status)
    else:
        summary = evidence.summary(error)
        segment.span_event(envelope.parent_span_id, FAILED,
                           {"boundaryId": envelope.boundary_id, "error": summary})
        segment.span_end(envelope.parent_span_id, envelope.boundary_started_at or time.time(),
                         "error", summary)
