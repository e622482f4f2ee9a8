"""Runs, segments and spans: the span API that emits Crux records and OTel spans together.

A *run* is one logical operation (its id, its operation id, its trace id). A *segment* is one
process execution of a run and numbers the records it emits (``segmentSeq`` 1, 2, ...). A span
belongs to the segment that opened it; its end, events and artifacts may be emitted by a later
segment (a child task acknowledging its boundary, for example).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode

from cruxcelery.telemetry import evidence, genai, ids, otel
from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.records import SCHEMA_VERSION
from cruxcelery.telemetry.redaction import redact_text

DETAIL = {"presentation": {"display": "detail"}}


@dataclass(frozen=True)
class RunRef:
    operation_id: str
    run_id: str
    trace_id: str


OtelStart = tuple[trace.Span, str, str]


def new_root_segment(
    recorder: Recorder, name: str, primitive: str, *, adopt_current_otel: bool,
    links: tuple[SpanContext, ...] = (), otel_parent: SpanContext | None = None,
) -> tuple[Segment, OtelStart]:
    """A new run whose root span is begun first, so the run takes the span's trace id (the active
    OTel span's trace, e.g. the Celery instrumentation's, when ``adopt_current_otel``; the trace
    of ``otel_parent``, an OTel-only caller such as a traced web request, when given)."""
    started = otel.start_span(
        name, otel_parent, adopt_current=adopt_current_otel, links=links, attributes={"crux.primitive": primitive}
    )
    new_id = ids.run_id()
    return Segment(recorder, RunRef(new_id, new_id, started[1])), started


_OTEL_NAMES = {"flowId": "crux.flow_id", "stepLabel": "crux.step", "attempt": "crux.attempt"}


def otel_attributes(primitive: str, run_id: str, attributes: dict[str, Any], flow_id: str | None,
                    step_id: str | None) -> dict[str, Any]:
    """A Crux span's OTel attributes: ``crux.primitive``, ``crux.run_id``, ``crux.flow_id``,
    ``crux.step`` and ``crux.attempt`` where they apply, and its (and its action's) scalar
    attributes under their own names."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, str | bool | int | float) and isinstance(key, str):
            out[_OTEL_NAMES.get(key, key)] = value
    out.update({"crux.primitive": primitive, "crux.run_id": run_id})
    if flow_id:
        out["crux.flow_id"] = flow_id
    if step_id and "crux.step" not in out:
        out["crux.step"] = step_id
    return out


def family_of(primitive: str) -> str:
    return primitive.split(".", 1)[0]


class Segment:
    """One process execution of a run. Thread-safe numbering of its records."""

    def __init__(self, recorder: Recorder, run: RunRef, segment_id: str | None = None) -> None:
        self.recorder = recorder
        self.run = run
        self.segment_id = segment_id or ids.segment_id()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            seq = next(self._seq)
        record: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "recordId": ids.record_id(),
            "type": type_,
            "operationId": self.run.operation_id,
            "runId": self.run.run_id,
            "segmentId": self.segment_id,
            "segmentSeq": seq,
            "traceId": self.run.trace_id,
        }
        record.update({k: v for k, v in fields.items() if v is not None or k == "preview"})  # a null preview is one
        self.recorder.emit(record)
        return record

    # run lifecycle -------------------------------------------------------------------------
    def run_start(
        self, name: str, root_primitive: str, *, parent_run_id: str | None = None,
        triggered_by_span_id: str | None = None, attributes: dict[str, Any] | None = None,
        started_at: float | None = None,
    ) -> None:
        self.emit(
            "run:start", name=name, rootPrimitive=root_primitive,
            startedAt=ids.iso_ms(started_at or time.time()), status="running",
            parentRunId=parent_run_id, triggeredBySpanId=triggered_by_span_id,
            attributes=json_safe(attributes or {}),
        )

    def run_end(self, status: str, started_at: float, error: BaseException | None = None) -> None:
        now = time.time()
        self.emit(
            "run:end", endedAt=ids.iso_ms(now), durationMs=_ms(now - started_at), status=status,
            error=evidence.summary(error) if error is not None else None,
        )

    def run_suspend(self, reason: str) -> None:
        self.emit("run:suspend", suspendedAt=ids.iso_ms(time.time()), reason=reason)

    def run_resume(self, reason: str, previous_segment_id: str | None) -> None:
        self.emit(
            "run:resume", resumedAt=ids.iso_ms(time.time()), reason=reason,
            previousSegmentId=previous_segment_id,
        )

    def edge(self, kind: str, from_run_id: str, from_span_id: str, from_trace_id: str,
             to_span_id: str | None, attributes: dict[str, Any] | None = None) -> None:
        self.emit(
            "edge", kind=kind, fromRunId=from_run_id, fromSpanId=from_span_id, fromTraceId=from_trace_id,
            toRunId=self.run.run_id, toSpanId=to_span_id, createdAt=ids.iso_ms(time.time()),
            attributes=json_safe(attributes or {}),
        )

    # spans ---------------------------------------------------------------------------------
    def start_span(
        self, name: str, primitive: str, *, parent: SpanRef | None, attributes: dict[str, Any] | None = None,
        flow_id: str | None = None, step_id: str | None = None, deadline_at: float | None = None,
        started: OtelStart | None = None,
    ) -> CruxSpan:
        """Open a span (and its OTel twin) under ``parent``; ``started`` passes an OTel span
        already begun by ``new_root_segment``."""
        attrs = json_safe(attributes or {})
        otel_attrs = otel_attributes(primitive, self.run.run_id, attrs, flow_id, step_id)
        otel_name = name
        if primitive == genai.AGENT_PRIMITIVE:  # GenAI conventions: invoke_agent {name}
            otel_attrs.update(genai.span_attributes(name, primitive, attrs))
            otel_name = genai.span_name(name, primitive)
        if started is None:
            parent_ctx = otel.remote_context(parent.trace_id, parent.span_id) if parent else None
            started = otel.start_span(otel_name, parent_ctx, attributes=otel_attrs)
        else:
            otel.set_attributes(started[0], otel_attrs)
            if otel_name != name:
                otel.rename(started[0], otel_name)
        otel_span, _trace_id, span_id = started
        span = CruxSpan(self, span_id, parent.span_id if parent else None, name, primitive, otel_span)
        self.emit(
            "span:start", spanId=span_id, parentSpanId=span.parent_span_id, family=family_of(primitive),
            primitive=primitive, name=name, startedAt=ids.iso_ms(span.started_at), status="running",
            flowId=flow_id, stepId=step_id, agentId=_str_or_none(attrs.get("agentId")),
            toolName=_str_or_none(attrs.get("toolName")),
            deadlineAt=ids.iso_ms(deadline_at) if deadline_at else None, attributes=attrs,
        )
        return span

    def span_event(self, span_id: str, name: str, attributes: dict[str, Any] | None = None) -> None:
        self.emit(
            "span:event", spanId=span_id, eventId=ids.event_id(), name=name,
            timestamp=ids.iso_ms(time.time()), attributes=json_safe(attributes or {}),
        )

    def span_end(self, span_id: str, started_at: float, status: str,
                 error: BaseException | dict[str, Any] | None = None) -> None:
        now = time.time()
        summary = evidence.summary(error) if isinstance(error, BaseException) else error
        self.emit(
            "span:end", spanId=span_id, endedAt=ids.iso_ms(now), durationMs=_ms(now - started_at),
            status=status, error=summary,
        )

    def artifact(self, span_id: str, kind: str, value: Any, *, text: bool = False) -> None:
        if text:
            preview: Any = json_safe(str(value))
            size = len(str(value).encode("utf-8", "replace"))
            content_type, encoding = "text/plain", "text"
        else:
            preview = json_safe(value)
            size = len(json.dumps(preview, separators=(",", ":")).encode("utf-8"))
            content_type, encoding = "application/json", "json"
        self.emit(
            "artifact", artifactId=ids.artifact_id(), spanId=span_id, kind=kind,
            createdAt=ids.iso_ms(time.time()), contentType=content_type, encoding=encoding,
            sizeBytes=size, preview=preview,
        )

    def error_evidence(self, span_id: str, exc: BaseException) -> None:
        """The ``exception`` event and ``error.stack`` / ``error.raw`` artifacts of a failing span."""
        self.span_event(span_id, "exception", evidence.exception_event_attributes(exc))
        self.artifact(span_id, "error.stack", evidence.stack_text(exc), text=True)
        self.artifact(span_id, "error.raw", evidence.raw_error(exc))


@dataclass(frozen=True)
class SpanRef:
    """Enough of a span to parent another one under it, in any process."""

    trace_id: str
    span_id: str


@dataclass
class CruxSpan:
    segment: Segment
    span_id: str
    parent_span_id: str | None
    name: str
    primitive: str
    otel_span: trace.Span
    started_at: float = field(default_factory=time.time)
    ended: bool = False

    @property
    def ref(self) -> SpanRef:
        return SpanRef(self.segment.run.trace_id, self.span_id)

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        self.segment.span_event(self.span_id, name, attributes)

    def artifact(self, kind: str, value: Any, *, text: bool = False) -> None:
        self.segment.artifact(self.span_id, kind, value, text=text)

    def end(self, status: str = "ok", error: BaseException | None = None, *, evidence_: bool = True) -> None:
        """End once: error evidence first for a failing span, then ``span:end``."""
        if self.ended:
            return
        self.ended = True
        if error is not None and evidence_:
            self.segment.error_evidence(self.span_id, error)
            otel.record_exception(self.otel_span, error, evidence.otel_exception_attributes(error))
        if status == "error":
            self.otel_span.set_status(Status(StatusCode.ERROR, redact_text(evidence.message(error)) if error else None))
        self.segment.span_end(self.span_id, self.started_at, status, error)
        self.otel_span.end()


def _str_or_none(value: Any) -> str | None:
    """A record field that must be a string (or absent), whatever the attribute held."""
    return value if isinstance(value, str) else None


def _ms(seconds: float) -> float:
    return round(max(seconds, 0.0) * 1000.0, 3)
