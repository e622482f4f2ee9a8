"""Crux canonical records, schema version 5: the wire models.

The runtime builds records as plain dicts (cheap on the hot path); these models are the contract
they are checked against (``validate_record``), in tests and by every consumer (devtools).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from cruxcelery.telemetry import ids

SCHEMA_VERSION: Literal[5] = 5

RunStatus = Literal["running", "ok", "error", "blocked", "cancelled", "suspended"]
SpanStatus = Literal["running", "ok", "error", "blocked", "cancelled", "suspended", "skipped"]
ISO_MS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

Timestamp = Annotated[str, Field(pattern=ISO_MS)]
SpanId = Annotated[str, Field(pattern=ids.SPAN_ID.pattern)]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ErrorSummary(_Wire):
    message: str
    name: str | None = None
    category: str | None = None
    retryable: bool | None = None


class _Common(_Wire):
    schema_version: Literal[5] = SCHEMA_VERSION
    record_id: str = Field(pattern=ids.RECORD_ID.pattern)
    operation_id: str = Field(pattern=ids.RUN_ID.pattern)
    run_id: str = Field(pattern=ids.RUN_ID.pattern)
    segment_id: str = Field(pattern=ids.SEGMENT_ID.pattern)
    segment_seq: int = Field(ge=1)
    trace_id: str = Field(pattern=ids.TRACE_ID.pattern)


class RunStart(_Common):
    type: Literal["run:start"]
    name: str
    root_primitive: str
    started_at: Timestamp
    status: Literal["running"] = "running"
    parent_run_id: str | None = Field(default=None, pattern=ids.RUN_ID.pattern)
    triggered_by_span_id: SpanId | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class RunSuspend(_Common):
    type: Literal["run:suspend"]
    suspended_at: Timestamp
    reason: str


class RunResume(_Common):
    type: Literal["run:resume"]
    resumed_at: Timestamp
    reason: str
    previous_segment_id: str | None = Field(default=None, pattern=ids.SEGMENT_ID.pattern)


class RunEnd(_Common):
    type: Literal["run:end"]
    ended_at: Timestamp
    duration_ms: float = Field(ge=0)
    status: RunStatus
    error: ErrorSummary | None = None


class _SpanHead(_Common):
    span_id: SpanId
    parent_span_id: SpanId | None = None
    family: str
    primitive: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    name: str
    started_at: Timestamp
    flow_id: str | None = None
    step_id: str | None = None
    tool_name: str | None = None
    agent_id: str | None = None
    deadline_at: Timestamp | None = None
    # a generation's model and provider (Crux's generation-run / golden-node-run fixtures)
    model: str | None = None
    provider: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


Metrics = dict[str, float]


class SpanStart(_SpanHead):
    type: Literal["span:start"]
    status: Literal["running"] = "running"


class SpanEnd(_Common):
    type: Literal["span:end"]
    span_id: SpanId
    ended_at: Timestamp
    duration_ms: float = Field(ge=0)
    status: SpanStatus
    error: ErrorSummary | None = None
    # what is only known at the end: token usage and cost (``metrics``), response model, finish
    # reasons, a failing tool's phase (``attributes``), as in Crux's fixtures
    metrics: Metrics | None = None
    attributes: dict[str, Any] | None = None


class Span(_SpanHead):
    """A whole finished span in one record."""

    type: Literal["span"]
    ended_at: Timestamp
    duration_ms: float = Field(ge=0)
    status: SpanStatus
    error: ErrorSummary | None = None
    metrics: Metrics | None = None


class SpanEvent(_Common):
    type: Literal["span:event"]
    span_id: SpanId
    event_id: str = Field(pattern=ids.EVENT_ID.pattern)
    name: str
    timestamp: Timestamp
    attributes: dict[str, Any] = Field(default_factory=dict)


class Artifact(_Common):
    type: Literal["artifact"]
    artifact_id: str = Field(pattern=ids.ARTIFACT_ID.pattern)
    span_id: SpanId
    kind: str
    created_at: Timestamp
    content_type: str
    encoding: Literal["json", "text"]
    size_bytes: int = Field(ge=0)
    preview: Any


class Edge(_Common):
    """A link between two runs, e.g. a detached scheduled task and the span that enqueued it."""

    type: Literal["edge"]
    kind: str
    from_run_id: str = Field(pattern=ids.RUN_ID.pattern)
    from_span_id: SpanId
    from_trace_id: str = Field(pattern=ids.TRACE_ID.pattern)
    to_run_id: str = Field(pattern=ids.RUN_ID.pattern)
    to_span_id: SpanId | None = None
    created_at: Timestamp
    attributes: dict[str, Any] = Field(default_factory=dict)


CruxRecord = Annotated[
    RunStart | RunSuspend | RunResume | RunEnd | SpanStart | SpanEnd | Span | SpanEvent | Artifact | Edge,
    Field(discriminator="type"),
]

_adapter: TypeAdapter[CruxRecord] = TypeAdapter(CruxRecord)


def validate_record(record: dict[str, Any]) -> CruxRecord:
    """Check one wire record against the v5 models; raises ``pydantic.ValidationError``."""
    return _adapter.validate_python(record)
