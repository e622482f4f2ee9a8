"""Run detail: a reconciled ``RunGraph`` as the API's tree (spans parents first, each with its
events, artifacts and diagnostics; infrastructure spans folded unless asked for)."""

from __future__ import annotations

from typing import Any

from cruxcelery.devtools.graph import Diagnostic, RunGraph, SegmentNode, SpanNode
from cruxcelery.devtools.models import (
    ArtifactOut,
    DiagnosticOut,
    EventOut,
    RunDetailOut,
    RunLinksOut,
    RunOut,
    SegmentOut,
    SpanOut,
)
from cruxcelery.devtools.timeutil import iso, parse_ms

__all__ = ["run_out", "run_detail", "segment_out"]


def _iso(ms: float | None) -> str | None:
    return iso(ms) if ms is not None else None


def _duration(start: float | None, end: float | None) -> float | None:
    return max(0.0, end - start) if start is not None and end is not None else None


def _diag(d: Diagnostic, span_id: str | None = None) -> DiagnosticOut:
    return DiagnosticOut.model_construct(code=d.code, message=d.message, rule=d.rule, span_id=span_id)


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _attrs(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("attributes")
    return value if isinstance(value, dict) else {}


def _event(record: dict[str, Any]) -> EventOut:
    return EventOut.model_construct(event_id=_s(record.get("eventId")), name=str(record.get("name", "")),
                    timestamp=_s(record.get("timestamp")), attributes=_attrs(record))


def _artifact(record: dict[str, Any]) -> ArtifactOut:
    size = record.get("sizeBytes")
    return ArtifactOut.model_construct(
        artifact_id=_s(record.get("artifactId")), kind=_s(record.get("kind")), created_at=_s(record.get("createdAt")),
        content_type=_s(record.get("contentType")), encoding=_s(record.get("encoding")),
        size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        preview=record.get("preview"),
    )


def _stack(span: SpanNode) -> str | None:
    for artifact in span.artifacts:
        if artifact.get("kind") == "error.stack" and isinstance(artifact.get("preview"), str):
            return str(artifact["preview"])
    for event in span.events:
        if event.get("name") == "exception":
            trace = _attrs(event).get("exception.stacktrace")
            if isinstance(trace, str):
                return trace
    return None


def segment_out(segment: SegmentNode) -> SegmentOut:
    seqs = sorted(set(segment.seqs))
    present = set(seqs)
    missing = [n for n in range(1, seqs[-1]) if n not in present][:100] if seqs else []
    return SegmentOut(
        segment_id=segment.segment_id, opened_by=segment.opened_by, previous_segment_id=segment.previous_segment_id,
        reason=segment.reason, started_at=_iso(segment.first_ms), ended_at=_iso(segment.last_ms),
        suspended=segment.suspended and not segment.ended, ended=segment.ended, record_count=segment.record_count,
        first_seq=seqs[0] if seqs else 0, last_seq=seqs[-1] if seqs else 0, missing_seqs=missing,
    )


def run_out(graph: RunGraph, record_count: int) -> RunOut:
    run = graph.run
    started = run.started_ms
    if started is None:
        firsts = [s.first_ms for s in graph.segments.values() if s.first_ms is not None]
        started = min(firsts) if firsts else None
    return RunOut(
        run_id=run.run_id, name=run.name, root_primitive=run.root_primitive, status=run.status,
        started_at=_iso(started), ended_at=_iso(run.ended_ms), operation_id=run.operation_id,
        parent_run_id=run.parent_run_id, record_count=record_count, raw_status=run.raw_status,
        duration_ms=_duration(started, run.ended_ms), triggered_by_span_id=run.triggered_by_span_id,
        attributes=run.attributes, error=run.error, reconciled_from=run.reconciled_from,
        diagnostics=[_diag(d) for d in run.diagnostics],
        open_spans=sum(1 for s in graph.spans.values() if s.running and not s.placeholder),
        unknown_records=graph.unknown,
    )


def run_detail(graph: RunGraph, *, infrastructure: bool, record_count: int, links: RunLinksOut,
               recheck_ms: float | None) -> RunDetailOut:
    spans = graph.top_down()
    folded = {s.span_id for s in spans if not infrastructure and s.infrastructure}
    out: list[SpanOut] = []
    diagnostics: list[DiagnosticOut] = [_diag(d) for d in graph.run.diagnostics]
    for span in spans:
        display_parent = None if span.cross_run_parent else span.parent_span_id
        while display_parent is not None and display_parent in folded:
            parent = graph.spans.get(display_parent)
            display_parent = parent.parent_span_id if parent is not None and not parent.cross_run_parent else None
        span_diags = [_diag(d, span.span_id) for d in span.diagnostics]
        diagnostics.extend(span_diags)
        fields = span.fields
        out.append(SpanOut.model_construct(  # built from checked values: no validation pass
            span_id=span.span_id, parent_span_id=span.parent_span_id, display_parent_span_id=display_parent,
            name=span.name, primitive=span.primitive, family=span.family, status=span.status,
            raw_status=span.raw_status if not span.placeholder else span.status,
            started_at=_iso(span.started_ms), ended_at=_iso(span.ended_ms),
            duration_ms=_duration(span.started_ms, span.ended_ms), folded=span.span_id in folded,
            infrastructure=span.infrastructure, placeholder=span.placeholder, segment_id=span.segment_id,
            flow_id=_s(fields.get("flowId")), step_id=_s(fields.get("stepId")), tool_name=_s(fields.get("toolName")),
            agent_id=_s(fields.get("agentId")), error=span.error, error_stack=_stack(span),
            attributes=span.attributes, reconciled_from=span.reconciled_from, diagnostics=span_diags,
            events=[_event(e) for e in sorted(span.events, key=_event_time)],
            artifacts=[_artifact(a) for a in span.artifacts],
        ))
    segments = sorted(graph.segments.values(), key=lambda s: (s.first_ms or 0.0, s.segment_id))
    return RunDetailOut(
        run=run_out(graph, record_count), segments=[segment_out(s) for s in segments], spans=out,
        diagnostics=diagnostics, links=links, infrastructure=infrastructure, recheck_at=_iso(recheck_ms),
    )


def _event_time(record: dict[str, Any]) -> float:
    return parse_ms(record.get("timestamp")) or 0.0
