"""Semantic spans for agent work (tools, generations, compositions).

A Crux span whose ``span:start`` carries the top-level fields Crux gives these primitives
(``model``, ``provider``, ``toolName``), whose ``span:end`` carries what is only known at the end
(``metrics``: tokens and cost; ``attributes``: response model, finish reasons, a failing tool's
phase), and whose OpenTelemetry twin is named and attributed after the GenAI conventions.

Everything here is best effort: a recording failure is logged, never raised into user code."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from cruxcelery.core.context import ActiveContext
from cruxcelery.telemetry import evidence, ids, otel
from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.redaction import redact_text
from cruxcelery.telemetry.spans import CruxSpan, SpanRef, family_of, otel_attributes

log = logging.getLogger("cruxcelery.agents")
T = TypeVar("T")


class BestEffort:
    """A guard for recording steps: ``guard(fn, *args, **kwargs)`` runs ``fn``; when it fails,
    ``message`` (with the traceback) goes to ``logger`` and the result is None (telemetry never
    breaks user code)."""

    def __init__(self, logger: logging.Logger, message: str) -> None:
        self._logger = logger
        self._message = message

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return fn(*args, **kwargs)
        except Exception:
            self._logger.warning(self._message, exc_info=True)
            return None


safely = BestEffort(log, "cruxcelery: recording an agent span failed; going on")
"""Run a recording step; log and swallow its failure."""


def record_content(ctx: ActiveContext | None) -> bool:
    """``CRUX_RECORD_CONTENT``: may message text and model output reach the records?"""
    if ctx is None:
        return False
    return bool(getattr(ctx.runtime.settings, "record_content", False))


def open_span(
    ctx: ActiveContext, name: str, primitive: str, *, attributes: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None, otel_name: str | None = None,
    otel_extra: dict[str, AttributeValue] | None = None, kind: SpanKind = SpanKind.INTERNAL,
    deadline_at: float | None = None, parent: SpanRef | None = None,
) -> CruxSpan:
    """Open a span under ``parent`` (default: the context's current span) and emit ``span:start``
    with ``fields`` as extra top-level fields. The OTel twin is ``otel_name`` with the Crux
    attributes plus ``otel_extra``."""
    segment = ctx.segment
    parent = parent or ctx.parent
    attrs: dict[str, Any] = json_safe(attributes or {})
    otel_attrs = otel_attributes(primitive, segment.run.run_id, attrs, ctx.flow_id, None)
    otel_attrs.update(otel_extra or {})
    otel_span, _trace, span_id = otel.start_span(
        otel_name or name, otel.remote_context(parent.trace_id, parent.span_id), attributes=otel_attrs, kind=kind,
    )
    span = CruxSpan(segment, span_id, parent.span_id, name, primitive, otel_span)
    segment.emit(
        "span:start", spanId=span_id, parentSpanId=parent.span_id, family=family_of(primitive),
        primitive=primitive, name=name, startedAt=ids.iso_ms(span.started_at), status="running",
        flowId=ctx.flow_id, toolName=attrs.get("toolName"), agentId=attrs.get("agentId"),
        deadlineAt=ids.iso_ms(deadline_at) if deadline_at else None, attributes=attrs, **(fields or {}),
    )
    return span


def end_span(
    span: CruxSpan, status: str = "ok", error: BaseException | None = None, *,
    metrics: dict[str, float] | None = None, attributes: dict[str, Any] | None = None,
    otel_extra: dict[str, AttributeValue] | None = None,
) -> None:
    """End once: for a failing span the ``exception`` event and ``error.stack`` / ``error.raw``
    artifacts first, then ``span:end`` with ``metrics`` and ``attributes``; then the OTel twin."""
    if span.ended:
        return
    span.ended = True
    segment = span.segment
    if error is not None:
        segment.error_evidence(span.span_id, error)
        otel.record_exception(span.otel_span, error, evidence.otel_exception_attributes(error))
    if otel_extra:
        otel.set_attributes(span.otel_span, otel_extra)
    if status == "error":
        span.otel_span.set_status(Status(StatusCode.ERROR, redact_text(str(error)) if error else None))
    now = time.time()
    segment.emit(
        "span:end", spanId=span.span_id, endedAt=ids.iso_ms(now),
        durationMs=round(max(now - span.started_at, 0.0) * 1000.0, 3), status=status,
        error=evidence.summary(error) if error is not None else None,
        metrics={k: v for k, v in (metrics or {}).items() if v is not None} or None,
        attributes=json_safe(attributes) if attributes else None,
    )
    span.otel_span.end()


def whole_span(
    ctx: ActiveContext, name: str, primitive: str, *, parent_span_id: str, started_at: float,
    ended_at: float, status: str, attributes: dict[str, Any] | None = None, fields: dict[str, Any] | None = None,
) -> str:
    """Emit one finished ``span`` record (no OTel twin): something that happened, not something
    that ran, such as a tool call a model requested that nothing executed. Returns its span id."""
    span_id = ids.span_id()
    attrs: dict[str, Any] = json_safe(attributes or {})
    ctx.segment.emit(
        "span", spanId=span_id, parentSpanId=parent_span_id, family=family_of(primitive), primitive=primitive,
        name=name, startedAt=ids.iso_ms(started_at), endedAt=ids.iso_ms(ended_at),
        durationMs=round(max(ended_at - started_at, 0.0) * 1000.0, 3), status=status, flowId=ctx.flow_id,
        toolName=attrs.get("toolName"), attributes=attrs, **(fields or {}),
    )
    return span_id


def flush_after(ctx: ActiveContext | None) -> None:
    """A bounded flush (the boundary bound) so a tool's records are out before its result returns."""
    if ctx is None:
        return
    runtime = ctx.runtime
    safely(runtime.flush, runtime.settings.boundary_flush_timeout_s)
