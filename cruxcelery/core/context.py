"""The active Crux context (contextvars, set and reset with tokens), ``capture_context`` and
``with_context`` for boundaries cruxcelery does not wrap (threads, other queues)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import NonRecordingSpan

from cruxcelery.core import registry
from cruxcelery.core.envelope import Envelope
from cruxcelery.core.outcomes import ControlFlow
from cruxcelery.errors import CruxError
from cruxcelery.telemetry import otel
from cruxcelery.telemetry.spans import CruxSpan, RunRef, Segment, SpanRef

if TYPE_CHECKING:
    from cruxcelery.core.helpers import CruxHelpers
    from cruxcelery.core.runtime import Runtime


@dataclass(frozen=True)
class ActiveContext:
    """Where the running code sits: its runtime, run segment, the span new work hangs under, and
    the Celery execution and flow it belongs to."""

    runtime: Runtime
    segment: Segment
    parent: SpanRef
    run_name: str
    run_started_at: float
    span: CruxSpan | None = None
    task_id: str | None = None
    owner: bool = False
    flow_id: str | None = None
    # the envelope this execution arrived with: a replacement (``self.replace``) takes its place
    incoming: Envelope | None = None

    @property
    def run(self) -> RunRef:
        return self.segment.run

    def envelope(self, **overrides: Any) -> Envelope:
        """A continuation envelope pointing at this context's current span."""
        fields: dict[str, Any] = {
            "kind": "continuation",
            "operation_id": self.run.operation_id,
            "run_id": self.run.run_id,
            "trace_id": self.run.trace_id,
            "parent_span_id": self.parent.span_id,
            "segment_id": self.segment.segment_id,
            "run_name": self.run_name[:200],
            "run_started_at": self.run_started_at,
            "flow_id": self.flow_id,
        }
        fields.update(overrides)
        return Envelope(**fields)


@dataclass(frozen=True)
class ActionContext:
    """The first argument of every action: ``ctx.crux`` helpers, the task and its request."""

    crux: CruxHelpers
    task: Any
    request: Any

    @property
    def run_id(self) -> str | None:
        active = current()
        return active.run.run_id if active else None

    @property
    def flow_id(self) -> str | None:
        active = current()
        return active.flow_id if active else None


_active: ContextVar[ActiveContext | None] = ContextVar("cruxcelery_active", default=None)


def current() -> ActiveContext | None:
    return _active.get()


def enter(ctx: ActiveContext, otel_span: Any = None, *, attach_otel: bool = True) -> Callable[[], None]:
    """Make ``ctx`` active (and, with ``attach_otel``, its span the current OTel span); returns
    the function that restores what was active before. Prefer ``activate`` unless the reset
    happens elsewhere (``task_postrun``: there only the Crux context may outlive the task
    function, since other ``task_postrun`` receivers detach their own OTel context)."""
    token = _active.set(ctx)
    otel_token = attach_span(ctx, otel_span) if attach_otel else None

    def reset() -> None:
        if otel_token is not None:
            otel.detach(otel_token)
        try:
            _active.reset(token)
        except ValueError:  # reset from another context: clear rather than leak
            _active.set(None)

    return reset


def attach_span(ctx: ActiveContext, otel_span: Any = None) -> object:
    """Make the context's span (or ``otel_span``) the current OTel span; returns the token."""
    span = otel_span if otel_span is not None else (ctx.span.otel_span if ctx.span else None)
    if span is None:
        span = NonRecordingSpan(otel.remote_context(ctx.parent.trace_id, ctx.parent.span_id))
    return otel.attach(span)


@contextmanager
def otel_attached(ctx: ActiveContext) -> Iterator[None]:
    """The context's span is the current OTel span for the block (user OTel spans nest in it)."""
    token = attach_span(ctx)
    try:
        yield
    finally:
        otel.detach(token)


@contextmanager
def activate(ctx: ActiveContext, otel_span: Any = None) -> Iterator[ActiveContext]:
    """Make ``ctx`` active for the block; restore after."""
    reset = enter(ctx, otel_span)
    try:
        yield ctx
    finally:
        reset()


@contextmanager
def child_span(
    name: str, primitive: str, attributes: dict[str, Any] | None = None, **span_fields: Any
) -> Iterator[CruxSpan | None]:
    """Open a span under the active context for the block: ended ``ok``, or ``error`` with
    evidence when the block raises (the error propagates). Outside any context: a no-op."""
    ctx = current()
    if ctx is None:
        yield None
        return
    span = ctx.segment.start_span(name, primitive, parent=ctx.parent, attributes=attributes, **span_fields)
    with activate(replace(ctx, span=span, parent=span.ref)):
        try:
            yield span
        except BaseException as exc:
            span.end(*status_for(exc))
            raise
        span.end("ok")


def status_for(exc: BaseException) -> tuple[str, BaseException | None]:
    """How a span ends when ``exc`` unwinds it: control flow (flow suspend/cancel) is not an error."""
    if isinstance(exc, ControlFlow):
        return exc.span_status, None
    return "error", exc


def capture_context() -> Envelope | None:
    """A carrier for the active context (``None`` outside one): pass it to ``with_context`` in
    another thread or process, or to ``scheduler.run_after(observability=...)``."""
    ctx = current()
    return ctx.runtime.codec.sign(ctx.envelope()) if ctx is not None else None


@contextmanager
def with_context(carrier: Envelope | dict[str, Any] | str | None) -> Iterator[ActiveContext | None]:
    """Continue the carrier's run in this thread (a new segment) for the block. A ``None`` or
    invalid carrier runs the block with no context (logged, never raised)."""
    runtime = registry.current()
    if runtime is None:
        raise CruxError("with_context needs a Crux(app) in this process")
    envelope = carrier if isinstance(carrier, Envelope) else runtime.codec.decode(carrier)
    if envelope is None:
        token = _active.set(None)
        try:
            yield None
        finally:
            _active.reset(token)
        return
    segment = Segment(runtime.recorder, RunRef(envelope.operation_id, envelope.run_id, envelope.trace_id))
    ctx = ActiveContext(
        runtime=runtime, segment=segment, parent=SpanRef(envelope.trace_id, envelope.parent_span_id),
        run_name=envelope.run_name or "", run_started_at=envelope.run_started_at or time.time(),
        flow_id=envelope.flow_id,
    )
    with activate(ctx):
        yield ctx
