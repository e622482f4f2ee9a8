"""The JSON API's shapes (the routes and fields of the README's Devtools section are a contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "ApiModel", "ArtifactOut", "DiagnosticOut", "DispositionOut", "EventOut", "FlowOut", "IngestOut",
    "RunDetailOut", "RunLinkOut", "RunLinksOut", "RunListOut", "RunOut", "RunSummaryOut", "SearchHitOut",
    "SearchOut", "SegmentOut", "SpanOut", "StatsOut",
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class DispositionOut(ApiModel):
    index: int
    record_id: str | None
    outcome: Literal["accepted", "rejected"]
    code: str | None = None
    retryable: bool = False
    duplicate: bool = False
    message: str | None = None


class IngestOut(ApiModel):
    dispositions: list[DispositionOut]
    accepted: int
    rejected: int
    unknown_record_types: int


class RunSummaryOut(ApiModel):
    run_id: str
    name: str | None
    root_primitive: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    operation_id: str | None = None
    parent_run_id: str | None = None
    record_count: int = 0


class RunListOut(ApiModel):
    runs: list[RunSummaryOut]
    next_cursor: str | None


class DiagnosticOut(ApiModel):
    code: str
    message: str
    rule: str
    span_id: str | None = None


class EventOut(ApiModel):
    event_id: str | None
    name: str
    timestamp: str | None
    attributes: dict[str, Any]


class ArtifactOut(ApiModel):
    artifact_id: str | None
    kind: str | None
    created_at: str | None
    content_type: str | None
    encoding: str | None
    size_bytes: int | None
    preview: Any = None


class SpanOut(ApiModel):
    span_id: str
    parent_span_id: str | None
    display_parent_span_id: str | None
    name: str
    primitive: str
    family: str | None
    status: str
    raw_status: str
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    folded: bool
    infrastructure: bool
    placeholder: bool
    segment_id: str | None
    flow_id: str | None = None
    step_id: str | None = None
    tool_name: str | None = None
    agent_id: str | None = None
    model: str | None = None  # a generation's model and provider
    provider: str | None = None
    metrics: dict[str, Any] | None = None  # its token usage and cost
    end_attributes: dict[str, Any] | None = None  # what its span:end said: response model, finish reasons...
    error: dict[str, Any] | None = None
    error_stack: str | None = None
    attributes: dict[str, Any]
    reconciled_from: str | None = None
    diagnostics: list[DiagnosticOut]
    events: list[EventOut]
    artifacts: list[ArtifactOut]


class RunOut(RunSummaryOut):
    raw_status: str
    duration_ms: float | None
    triggered_by_span_id: str | None = None
    attributes: dict[str, Any]
    error: dict[str, Any] | None = None
    reconciled_from: str | None = None
    diagnostics: list[DiagnosticOut]
    open_spans: int = 0
    unknown_records: int = 0


class SegmentOut(ApiModel):
    segment_id: str
    opened_by: str | None
    previous_segment_id: str | None
    reason: str | None
    started_at: str | None
    ended_at: str | None
    suspended: bool
    ended: bool
    record_count: int
    first_seq: int
    last_seq: int
    missing_seqs: list[int]


class RunLinkOut(ApiModel):
    run_id: str
    name: str | None = None
    status: str | None = None
    kind: str
    span_id: str | None = None


class RunLinksOut(ApiModel):
    parent: RunLinkOut | None
    children: list[RunLinkOut]
    scheduled_by: list[RunLinkOut]
    scheduled: list[RunLinkOut]


class RunDetailOut(ApiModel):
    run: RunOut
    segments: list[SegmentOut]
    spans: list[SpanOut]
    diagnostics: list[DiagnosticOut]
    links: RunLinksOut
    infrastructure: bool
    recheck_at: str | None


class SearchHitOut(ApiModel):
    run_id: str
    span_id: str | None
    name: str
    primitive: str | None
    matched: Literal["name", "attribute", "run"]
    run_name: str | None = None
    run_status: str | None = None


class SearchOut(ApiModel):
    query: str
    results: list[SearchHitOut]


class FlowOut(ApiModel):
    flow_id: str
    runs: list[RunSummaryOut]
    segments: list[SegmentOut]
    snapshot: dict[str, Any] | None
    snapshot_source: str | None
    snapshot_error: str | None = None


class StatsOut(ApiModel):
    records: int
    runs: int
    unknown_record_types: int
    by_type: dict[str, int]
    journal_mode: str
