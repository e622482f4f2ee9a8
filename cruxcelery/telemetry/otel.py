"""OpenTelemetry plumbing: Crux spans are OTel spans.

The application's tracer provider is used when one is set; otherwise nothing could export an SDK
span, so Crux spans are non-recording OTel spans with W3C ids Crux makes itself. Either way the
ids in Crux records are the OTel ids and the context propagates like any OTel context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from cruxcelery.telemetry import ids

_INSTRUMENTATION = "cruxcelery"


_tracers: dict[int, tuple[trace.TracerProvider, trace.Tracer]] = {}


def _tracer() -> trace.Tracer | None:
    """The application's tracer (one per provider: the SDK builds a new one on every
    ``get_tracer``), or ``None`` when the application set no provider: then nobody can see an
    SDK span, and Crux makes its own W3C ids instead."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return None
    cached = _tracers.get(id(provider))
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer(_INSTRUMENTATION))
        _tracers[id(provider)] = cached
    return cached[1]


def remote_context(trace_id: str, span_id: str) -> SpanContext:
    return SpanContext(
        trace_id=int(trace_id, 16), span_id=int(span_id, 16), is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def current_span_context() -> SpanContext | None:
    """The active OTel span's context (e.g. the Celery instrumentation's ``run`` span), if valid."""
    ctx = trace.get_current_span().get_span_context()
    return ctx if ctx.is_valid else None


def start_span(
    name: str,
    parent: SpanContext | None,
    *,
    adopt_current: bool = False,
    attributes: dict[str, AttributeValue] | None = None,
    links: Sequence[SpanContext] = (),
    kind: SpanKind = SpanKind.INTERNAL,
) -> tuple[trace.Span, str, str]:
    """Start an OTel span under ``parent`` (or, with ``adopt_current``, under the active OTel span,
    else as a new root). Returns ``(span, trace_id_hex, span_id_hex)``."""
    tracer = _tracer()
    if tracer is None:
        return _own_span(parent if parent is not None else (current_span_context() if adopt_current else None))
    if parent is not None:
        ctx = trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())
    elif adopt_current:
        ctx = otel_context.get_current()
    else:
        ctx = otel_context.Context()
    span = tracer.start_span(
        name, context=ctx, kind=kind, attributes=attributes, links=[Link(link) for link in links]
    )
    sc = span.get_span_context()
    if sc.is_valid:
        return span, format(sc.trace_id, "032x"), format(sc.span_id, "016x")
    return _own_span(parent)  # a no-op provider: our own ids keep Crux records well formed


def _own_span(parent: SpanContext | None) -> tuple[trace.Span, str, str]:
    """A non-recording span with fresh W3C ids, in ``parent``'s trace when given."""
    trace_hex = format(parent.trace_id, "032x") if parent is not None else ids.trace_id()
    span_hex = ids.span_id()
    return NonRecordingSpan(remote_context(trace_hex, span_hex)), trace_hex, span_hex


def attach(span: trace.Span) -> object:
    return otel_context.attach(trace.set_span_in_context(span))


def detach(token: object) -> None:
    with contextlib.suppress(Exception):  # detaching in another context must never hurt the task
        otel_context.detach(token)  # type: ignore[arg-type]


def set_attributes(span: trace.Span, attributes: dict[str, AttributeValue]) -> None:
    with contextlib.suppress(Exception):  # attributes are best effort on any span
        span.set_attributes(attributes)


def record_exception(span: trace.Span, exc: BaseException, attributes: dict[str, str] | None) -> None:
    """The span's ``exception`` event. The SDK renders ``str(exc)`` itself: for an exception whose
    message cannot be rendered, the event carries its type and what ``attributes`` say instead."""
    try:
        span.record_exception(exc, attributes=attributes)
    except Exception:
        with contextlib.suppress(Exception):
            span.add_event("exception", {"exception.type": type(exc).__qualname__, **(attributes or {})})


def rename(span: trace.Span, name: str) -> None:
    with contextlib.suppress(Exception):  # best effort on any span
        span.update_name(name)


def enabled() -> bool:
    """Whether the application set a tracer provider (otherwise no SDK span is exported)."""
    return _tracer() is not None


def linked_span(name: str, parent: SpanContext | None, link: SpanContext,
                attributes: dict[str, AttributeValue]) -> None:
    """A zero-length span under ``parent`` (another trace's span, e.g. a flow's root) linked to
    ``link`` (the request that caused it): it puts a request of one trace into another."""
    span, _, _ = start_span(name, parent, links=(link,), attributes=attributes)
    span.end()


def untraced() -> contextlib.AbstractContextManager[object]:
    """No OpenTelemetry instrumentation (of HTTP clients, say) of telemetry's own requests, which
    would otherwise make telemetry about delivering telemetry."""
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # pragma: no cover - the package ships with the celery instrumentation
        return contextlib.nullcontext()
    return suppress_instrumentation()
