"""Run detail: a reconciled ``RunGraph`` as the API's tree (spans parents first, each with its
events, artifacts and diagnostics; infrastructure spans folded unless asked for).

The detail is built as plain JSON-ready dicts with the camelCase keys of ``models.RunDetailOut``
(a 5,000-span run is ~25,000 objects: building pydantic models for them cost more than everything
else in a read); ``models`` stays the documented shape and ``service.run_detail`` validates these
dicts into it."""

from __future__ import annotations

from typing import Any

import cruxcelery.devtools.fastjson as fastjson
from cruxcelery.devtools.graph import Diagnostic, RunGraph, SegmentNode, SpanNode
from cruxcelery.devtools.models import RunOut, SegmentOut
from cruxcelery.devtools.timeutil import iso, parse_ms

__all__ = ["Fragments", "detail_json", "run_dict", "run_out", "segment_dict", "segment_order", "segment_out"]

Json = dict[str, Any]


def _iso(ms: float | None) -> str | None:
    return iso(ms) if ms is not None else None


def _duration(start: float | None, end: float | None) -> float | None:
    return max(0.0, end - start) if start is not None and end is not None else None


def _diag(d: Diagnostic, span_id: str | None = None) -> Json:
    return {"code": d.code, "message": d.message, "rule": d.rule, "spanId": span_id}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _attrs(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("attributes")
    return value if isinstance(value, dict) else {}


def _event(record: dict[str, Any]) -> Json:
    name = record.get("name", "")
    return {"eventId": _s(record.get("eventId")), "name": name if isinstance(name, str) else str(name),
            "timestamp": _s(record.get("timestamp")), "attributes": _attrs(record)}


def _artifact(record: dict[str, Any]) -> Json:
    size = record.get("sizeBytes")
    return {
        "artifactId": _s(record.get("artifactId")), "kind": _s(record.get("kind")),
        "createdAt": _s(record.get("createdAt")), "contentType": _s(record.get("contentType")),
        "encoding": _s(record.get("encoding")),
        "sizeBytes": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "preview": record.get("preview"),
    }


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


def segment_order(segment: SegmentNode) -> tuple[float, int, str]:
    """Segments in time order; on a tie (the same millisecond) the one ``run:start`` opened first."""
    return (segment.first_ms or 0.0, 0 if segment.opened_by == "run:start" else 1, segment.segment_id)


def segment_dict(segment: SegmentNode) -> Json:
    seqs = sorted(set(segment.seqs))
    missing: list[int] = []
    if seqs and seqs[-1] != len(seqs):  # a gap somewhere below the highest number
        present = set(seqs)
        missing = [n for n in range(1, seqs[-1]) if n not in present][:100]
    return {
        "segmentId": segment.segment_id, "openedBy": segment.opened_by,
        "previousSegmentId": segment.previous_segment_id, "reason": segment.reason,
        "startedAt": _iso(segment.first_ms), "endedAt": _iso(segment.last_ms),
        "suspended": segment.suspended and not segment.ended, "ended": segment.ended,
        "recordCount": segment.record_count, "firstSeq": seqs[0] if seqs else 0,
        "lastSeq": seqs[-1] if seqs else 0, "missingSeqs": missing,
    }


def segment_out(segment: SegmentNode) -> SegmentOut:
    return SegmentOut.model_validate(segment_dict(segment))


def run_dict(graph: RunGraph, record_count: int) -> Json:
    run = graph.run
    started = run.started_ms
    if started is None:
        firsts = [s.first_ms for s in graph.segments.values() if s.first_ms is not None]
        started = min(firsts) if firsts else None
    return {
        "runId": run.run_id, "name": run.name, "rootPrimitive": run.root_primitive, "status": run.status,
        "startedAt": _iso(started), "endedAt": _iso(run.ended_ms), "operationId": run.operation_id,
        "parentRunId": run.parent_run_id, "recordCount": record_count, "rawStatus": run.raw_status,
        "durationMs": _duration(started, run.ended_ms), "triggeredBySpanId": run.triggered_by_span_id,
        "attributes": run.attributes, "error": run.error, "reconciledFrom": run.reconciled_from,
        "diagnostics": [_diag(d) for d in run.diagnostics],
        "openSpans": sum(1 for s in graph.spans.values() if s.running and not s.placeholder),
        "unknownRecords": graph.unknown,
    }


def run_out(graph: RunGraph, record_count: int) -> RunOut:
    return RunOut.model_validate(run_dict(graph, record_count))


def _event_time(record: dict[str, Any]) -> float:
    return parse_ms(record.get("timestamp")) or 0.0


def _span_dict(span: SpanNode, display_parent: str | None, folded: bool, diags: list[Json]) -> Json:
    fields = span.fields
    events = span.events
    if len(events) > 1:
        events = sorted(events, key=_event_time)
    return {
        "spanId": span.span_id, "parentSpanId": span.parent_span_id, "displayParentSpanId": display_parent,
        "name": span.name, "primitive": span.primitive, "family": span.family, "status": span.status,
        "rawStatus": span.raw_status if not span.placeholder else span.status,
        "startedAt": _iso(span.started_ms), "endedAt": _iso(span.ended_ms),
        "durationMs": _duration(span.started_ms, span.ended_ms), "folded": folded,
        "infrastructure": span.infrastructure, "placeholder": span.placeholder, "segmentId": span.segment_id,
        "flowId": _s(fields.get("flowId")), "stepId": _s(fields.get("stepId")),
        "toolName": _s(fields.get("toolName")), "agentId": _s(fields.get("agentId")), "error": span.error,
        "model": _s(fields.get("model")), "provider": _s(fields.get("provider")), "metrics": span.metrics or None,
        "endAttributes": span.end_attributes or None,
        "errorStack": _stack(span), "attributes": span.attributes, "reconciledFrom": span.reconciled_from,
        "diagnostics": diags, "events": [_event(e) for e in events],
        "artifacts": [_artifact(a) for a in span.artifacts],
    }


Fragments = dict[str, tuple[tuple[Any, ...], bytes]]
"""Each span's JSON text by span id, with the inputs it was made from (``_signature``)."""


def _signature(span: SpanNode, display_parent: str | None, folded: bool) -> tuple[Any, ...]:
    """Everything a span's JSON is made of. Its records only ever add (``record_count``), and the
    rest is what reconciliation and the tree around it may change."""
    diagnostics = tuple((d.code, d.message, d.rule) for d in span.diagnostics) if span.diagnostics else ()
    return (span.record_count, span.name, span.started_ms, span.status, span.ended_ms, span.raw_status,
            span.reconciled_from, span.placeholder, span.parent_span_id, span.segment_id, span.cross_run_parent,
            display_parent, folded, diagnostics)


def detail_json(graph: RunGraph, spans: list[SpanNode], *, infrastructure: bool, record_count: int,
                recheck_ms: float | None, previous: Fragments | None = None) -> tuple[bytes, Fragments]:
    """Everything of ``GET /api/runs/{runId}`` but ``links``, as JSON, and its span fragments.
    ``spans``: ``graph.top_down()``. The JSON of a span whose inputs are those of a fragment in
    ``previous`` (the same run read before) is that fragment: a read after a few new records
    serializes only the spans they changed."""
    folded = {s.span_id for s in spans if s.infrastructure} if not infrastructure else set()
    fragments: Fragments = {}
    parts: list[bytes] = []
    diagnostics: list[Json] = [_diag(d) for d in graph.run.diagnostics]
    by_id = graph.spans
    for span in spans:
        display_parent = None if span.cross_run_parent else span.parent_span_id
        while display_parent is not None and display_parent in folded:
            parent = by_id.get(display_parent)
            display_parent = parent.parent_span_id if parent is not None and not parent.cross_run_parent else None
        span_diags = [_diag(d, span.span_id) for d in span.diagnostics] if span.diagnostics else []
        diagnostics.extend(span_diags)
        is_folded = span.span_id in folded
        key = _signature(span, display_parent, is_folded)
        hit = previous.get(span.span_id) if previous is not None else None
        text = hit[1] if hit is not None and hit[0] == key else \
            fastjson.dumps(_span_dict(span, display_parent, is_folded, span_diags))
        fragments[span.span_id] = (key, text)
        parts.append(text)
    segments = [segment_dict(s) for s in sorted(graph.segments.values(), key=segment_order)]
    body = b"".join((
        b'{"run":', fastjson.dumps(run_dict(graph, record_count)), b',"segments":', fastjson.dumps(segments),
        b',"spans":[', b",".join(parts), b'],"diagnostics":', fastjson.dumps(diagnostics),
        b',"infrastructure":', b"true" if infrastructure else b"false",
        b',"recheckAt":', fastjson.dumps(_iso(recheck_ms)), b"}",
    ))
    return body, fragments
