"""One task execution's place in a run: read the envelope, open the segment (or a new root run)
and the action span, close them with the right status, and keep the context active until
``task_postrun`` so chain links and chord bodies published after the task returns inherit it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cruxcelery.core import boundaries
from cruxcelery.core.context import ActiveContext, current
from cruxcelery.core.envelope import HEADER, Envelope, TaskBinding
from cruxcelery.core.outcomes import Outcome, classify
from cruxcelery.telemetry import otel
from cruxcelery.telemetry.spans import CruxSpan, RunRef, Segment, SpanRef, new_root_segment

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

REPLACED = "runtime.celery.replaced"
_RUN_STATUS = {"ok": "ok", "skipped": "ok", "error": "error", "cancelled": "cancelled",
               "suspended": "suspended", "blocked": "blocked"}


def read_envelope(runtime: Runtime, request: Any, task_id: Any, task_name: str) -> Envelope | None:
    """The envelope of a task request: ``request.headers["crux"]``, else ``request.crux`` (signed,
    when signing is on, for task ``task_id`` named ``task_name``)."""
    headers = getattr(request, "headers", None)
    raw = headers.get(HEADER) if isinstance(headers, dict) else None
    if raw is None:
        raw = getattr(request, HEADER, None)
    return runtime.codec.decode(raw, TaskBinding.of(task_id, task_name))


@dataclass
class ActionExecution:
    """An action's execution as its records see it: its context, its span, the envelope it came with."""

    ctx: ActiveContext
    span: CruxSpan
    envelope: Envelope | None
    task: Any = None
    request: Any = None
    nested: bool = False  # run in-process inside another action (apply() / a direct call)


def open_execution(
    runtime: Runtime, *, task: Any, request: Any, name: str, primitive: str,
    attributes: dict[str, Any], deadline_at: float | None = None,
) -> ActionExecution:
    task_name = str(task.name)
    task_id = getattr(request, "id", None)
    envelope = read_envelope(runtime, request, task_id, task_name)
    outer = current()
    attempt = int(getattr(request, "retries", 0) or 0) + 1
    span_fields: dict[str, Any] = {"attributes": attributes, "deadline_at": deadline_at}
    if envelope is None and outer is not None:
        span = outer.segment.start_span(name, primitive, parent=outer.parent, flow_id=outer.flow_id,
                                        **span_fields)
        ctx = replace(outer, span=span, parent=span.ref, task_id=task_id, owner=False)
        return ActionExecution(ctx, span, None, task, request, nested=True)
    if envelope is None or envelope.kind == "detached":
        links = (otel.remote_context(envelope.trace_id, envelope.parent_span_id),) if envelope else ()
        segment, started = new_root_segment(
            runtime.recorder, name, primitive, adopt_current_otel=envelope is None, links=links
        )
        run_started = time.time()
        segment.run_start(name, primitive, attributes=attributes, started_at=run_started)
        span = segment.start_span(name, primitive, parent=None, started=started, **span_fields)
        if envelope is not None:
            segment.edge("scheduled", envelope.run_id, envelope.parent_span_id, envelope.trace_id,
                         span.span_id, {"boundaryId": envelope.boundary_id, "label": envelope.label,
                                        "operationId": envelope.operation_id})
        ctx = ActiveContext(runtime, segment, span.ref, name, run_started, span=span, task_id=task_id,
                            owner=True)
        return ActionExecution(ctx, span, envelope, task, request)
    segment = Segment(runtime.recorder, RunRef(envelope.operation_id, envelope.run_id, envelope.trace_id))
    if envelope.owner:
        segment.run_resume("retry" if attempt > 1 else "resume", envelope.segment_id)
    boundaries.received(segment, envelope, task_name, task_id, attempt)
    span = segment.start_span(name, primitive, parent=SpanRef(envelope.trace_id, envelope.parent_span_id),
                              flow_id=envelope.flow_id, **span_fields)
    ctx = ActiveContext(
        runtime, segment, span.ref, envelope.run_name or name, envelope.run_started_at or time.time(),
        span=span, task_id=task_id, owner=envelope.owner, flow_id=envelope.flow_id, incoming=envelope,
    )
    return ActionExecution(ctx, span, envelope, task, request)


def close_execution(execution: ActionExecution, exc: BaseException | None, result: Any = None) -> Outcome:
    """End the action span, acknowledge the boundary and end (or suspend) an owned run, as the
    execution's ``Outcome`` says: a retry or a replacement leaves the boundary open and suspends
    the run, which the next attempt (or the replacement) resumes."""
    ctx = execution.ctx
    outcome = classify(exc, execution.task, execution.request, result)
    if outcome.kind == "replaced":
        execution.span.event(REPLACED, {"replacedBy": ctx.task_id})
    execution.span.end(outcome.span_status, outcome.span_error)
    continuation = execution.envelope is not None and execution.envelope.kind == "continuation"
    if continuation and outcome.terminal:
        assert execution.envelope is not None
        boundaries.finished(ctx.segment, execution.envelope, outcome.span_status, outcome.span_error)
    if ctx.owner and not execution.nested:
        if not outcome.terminal:
            ctx.segment.run_suspend(outcome.kind)
        else:
            ctx.segment.run_end(_RUN_STATUS.get(outcome.span_status, "error"), ctx.run_started_at,
                                outcome.span_error)
    return outcome


# -- what an action decided, for task_postrun -------------------------------------------------

@dataclass(frozen=True)
class Settled:
    """How an action's execution ended, classified once by the action itself, and the secret
    values of its args (so the extensions that hear the close redact them too)."""

    outcome: Outcome
    secrets: tuple[Any, ...] = ()


class _Settled(threading.local):
    def __init__(self) -> None:
        self.by_task: dict[str, Settled] = {}


_settled = _Settled()


def settle(task_id: str | None, outcome: Outcome, secrets: tuple[Any, ...] = ()) -> None:
    """Record the action's outcome for its ``task_postrun`` (which classifies nothing again)."""
    if task_id is not None and is_open(task_id):
        _settled.by_task[task_id] = Settled(outcome, secrets)


def take_settled(task_id: str) -> Settled | None:
    return _settled.by_task.pop(task_id, None)


# -- keeping a context active until task_postrun ---------------------------------------------

class _Frames(threading.local):
    def __init__(self) -> None:
        self.stack: list[tuple[str, list[Callable[[], None]]]] = []
        self.refused: set[str] = set()


_frames = _Frames()


def enter_frame(task_id: str) -> None:
    """Called by ``task_prerun``: the tracer will call ``task_postrun`` for this task."""
    _frames.stack.append((task_id, []))


def is_open(task_id: str) -> bool:
    """Whether this thread is executing ``task_id`` (between its prerun and postrun)."""
    return any(frame_id == task_id for frame_id, _ in _frames.stack)


def refuse(task_id: str) -> None:
    """Called by ``task_prerun`` when an extension refused this execution (``admits``)."""
    _frames.refused.add(task_id)


def is_refused(task_id: str | None) -> bool:
    """Whether this thread's execution of ``task_id`` was refused: a crux action skips its body."""
    return task_id is not None and task_id in _frames.refused and is_open(task_id)


def exit_frame(task_id: str) -> None:
    """Called by ``task_postrun``: run the deferred resets of this task (and of any frame left
    open above it by an execution that never reached its postrun)."""
    stack = _frames.stack
    if not any(frame_id == task_id for frame_id, _ in stack):
        return
    while stack:
        frame_id, resets = stack.pop()
        _frames.refused.discard(frame_id)
        if frame_id != task_id:  # never reached its postrun: what it settled goes with it
            _settled.by_task.pop(frame_id, None)
        for reset in reversed(resets):
            reset()
        if frame_id == task_id:
            return


def defer_or_run(task_id: str | None, reset: Callable[[], None]) -> None:
    """Reset at this task's ``task_postrun`` when the tracer runs it, else now."""
    stack = _frames.stack
    if task_id is not None and stack and stack[-1][0] == task_id:
        stack[-1][1].append(reset)
    else:
        reset()
