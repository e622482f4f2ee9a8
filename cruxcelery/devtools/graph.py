"""One run as a graph: its spans (with events and artifacts), lifecycle and segments, built from
the run's raw records in any arrival order. Reconciliation (``reconcile``) then changes only the
presentation fields of this graph (``status``, ``ended_ms``, ``diagnostics``): the graph is built
afresh from the stored records on every read, so raw records are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cruxcelery.devtools.timeutil import parse_ms

__all__ = ["RunGraph", "RunNode", "SegmentNode", "SpanNode", "build_graph"]

_LIFECYCLE_RANK = {"run:start": 0, "run:resume": 1, "run:suspend": 2, "run:end": 3}
_LIFECYCLE_TIME = {"run:start": "startedAt", "run:resume": "resumedAt", "run:suspend": "suspendedAt",
                   "run:end": "endedAt"}
INFRASTRUCTURE_DISPLAYS = frozenset({"detail", "metadata"})
PLACEHOLDER_STATUS = "missing"
"""The status of a placeholder: a span known only by reference (a parent, or events and artifacts)."""


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class Diagnostic:
    code: str
    message: str
    rule: str


@dataclass(slots=True)
class SpanNode:
    span_id: str
    parent_span_id: str | None = None
    name: str = ""
    primitive: str = ""
    family: str | None = None
    segment_id: str | None = None
    started_ms: float | None = None
    raw_status: str = "running"
    raw_ended_ms: float | None = None
    error: dict[str, Any] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # flowId, stepId, toolName, agentId, deadlineAt, model...
    metrics: dict[str, Any] = field(default_factory=dict)  # a generation's tokens and cost (its end's metrics)
    end_attributes: dict[str, Any] = field(default_factory=dict)  # finish reasons, a failing tool's phase...
    events: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    record_count: int = 0  # records naming this span: records only add, so a span with as many is unchanged
    has_start: bool = False
    placeholder: bool = False
    cross_run_parent: bool = False
    # presentation (reconciled)
    status: str = "running"
    ended_ms: float | None = None
    reconciled_from: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == "running" and self.ended_ms is None

    @property
    def infrastructure(self) -> bool:
        display = _d(self.attributes.get("presentation")).get("display")
        return display in INFRASTRUCTURE_DISPLAYS

    def diagnose(self, code: str, message: str, rule: str) -> None:
        self.diagnostics.append(Diagnostic(code, message, rule))


@dataclass(slots=True)
class SegmentNode:
    segment_id: str
    seqs: list[int] = field(default_factory=list)
    first_ms: float | None = None
    last_ms: float | None = None
    opened_by: str | None = None  # run:start | run:resume
    previous_segment_id: str | None = None
    reason: str | None = None
    suspended: bool = False
    ended: bool = False
    record_count: int = 0

    def saw(self, at_ms: float | None) -> None:
        if at_ms is None:
            return
        self.first_ms = at_ms if self.first_ms is None else min(self.first_ms, at_ms)
        self.last_ms = at_ms if self.last_ms is None else max(self.last_ms, at_ms)


@dataclass(slots=True)
class RunNode:
    run_id: str
    operation_id: str | None = None
    name: str | None = None
    root_primitive: str | None = None
    parent_run_id: str | None = None
    triggered_by_span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    started_ms: float | None = None
    has_start: bool = False
    raw_status: str = "running"
    raw_ended_ms: float | None = None
    error: dict[str, Any] | None = None
    last_activity_ms: float | None = None
    status: str = "running"
    ended_ms: float | None = None
    reconciled_from: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass(slots=True)
class RunGraph:
    run: RunNode
    spans: dict[str, SpanNode]
    segments: dict[str, SegmentNode]
    edges: list[dict[str, Any]]
    unknown: int = 0
    _children: dict[str | None, list[SpanNode]] | None = None
    _order: list[SpanNode] | None = None

    def children(self) -> dict[str | None, list[SpanNode]]:
        """Spans by parent id (``None``: roots), each list in start order. The shape of the tree
        is fixed once the graph is built (reconciliation changes presentation only), so it is
        computed once; callers must not change the lists."""
        if self._children is not None:
            return self._children
        out: dict[str | None, list[SpanNode]] = {}
        for span in self.spans.values():
            parent = None if span.cross_run_parent else span.parent_span_id
            group = out.get(parent)
            if group is None:
                out[parent] = [span]
            else:
                group.append(span)
        for group in out.values():
            if len(group) > 1:
                group.sort(key=_start_order)
        self._children = out
        return out

    def top_down(self) -> list[SpanNode]:
        """Every span, parents before children (cycles broken). Computed once, like ``children``."""
        if self._order is None:
            self._order = self._top_down()
        return self._order

    def _top_down(self) -> list[SpanNode]:
        children = self.children()
        out: list[SpanNode] = []
        seen: set[str] = set()
        stack = list(reversed(children.get(None, [])))
        while stack:
            span = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            out.append(span)
            stack.extend(reversed(children.get(span.span_id, [])))
        out.extend(s for s in self.spans.values() if s.span_id not in seen)  # parts of a cycle
        return out


_INF = float("inf")


def _start_order(span: SpanNode) -> tuple[float, str]:
    started = span.started_ms
    return (started if started is not None else _INF, span.span_id)


def build_graph(run_id: str, records: list[dict[str, Any]]) -> RunGraph:
    """``records``: the run's parsed records in arrival order."""
    run = RunNode(run_id)
    spans: dict[str, SpanNode] = {}
    segments: dict[str, SegmentNode] = {}
    edges: list[dict[str, Any]] = []
    lifecycle: list[tuple[float, int, int, dict[str, Any]]] = []
    unknown = 0
    last_activity: float | None = None
    for order, record in enumerate(records):
        type_ = record.get("type")
        segment_id = record["segmentId"]
        segment = segments.get(segment_id)
        if segment is None:
            segment = segments[segment_id] = SegmentNode(segment_id)
        segment.seqs.append(record["segmentSeq"])
        segment.record_count += 1
        if run.operation_id is None:
            run.operation_id = _s(record.get("operationId"))
        at = _record_ms(record)
        if at is not None:  # SegmentNode.saw, inline: this loop runs once per record of the run
            if segment.first_ms is None or at < segment.first_ms:
                segment.first_ms = at
            if segment.last_ms is None or at > segment.last_ms:
                segment.last_ms = at
            if last_activity is None or at > last_activity:
                last_activity = at
        if type_ in _SPAN_TYPES:
            _span_record(spans, str(type_), record)
        elif type_ == "span:event":
            holder = spans.get(record["spanId"]) or _span(spans, record["spanId"])
            holder.events.append(record)
            holder.record_count += 1
        elif type_ in _LIFECYCLE_RANK:
            lifecycle.append((at if at is not None else 0.0, _LIFECYCLE_RANK[str(type_)], order, record))
            _segment_lifecycle(segment, str(type_), record)
        elif type_ == "artifact":
            holder = _span(spans, record["spanId"])
            holder.artifacts.append(record)
            holder.record_count += 1
        elif type_ == "edge":
            edges.append(record)
        else:
            unknown += 1
    run.last_activity_ms = last_activity
    _apply_lifecycle(run, lifecycle)
    _finish_spans(run, spans)
    return RunGraph(run, spans, segments, edges, unknown)


_SPAN_TYPES = frozenset({"span:start", "span", "span:end"})
_RECORD_TIME_KEYS = ("endedAt", "timestamp", "createdAt", "suspendedAt", "resumedAt", "startedAt")


def _record_ms(record: dict[str, Any]) -> float | None:
    for key in _RECORD_TIME_KEYS:
        raw = record.get(key)
        if raw is not None:
            value = parse_ms(raw)
            if value is not None:
                return value
    return None


def _segment_lifecycle(segment: SegmentNode, type_: str, record: dict[str, Any]) -> None:
    if type_ in ("run:start", "run:resume"):
        segment.opened_by = type_
        segment.reason = _s(record.get("reason")) or segment.reason
        segment.previous_segment_id = _s(record.get("previousSegmentId"))
    elif type_ == "run:suspend":
        segment.suspended = True
        segment.reason = _s(record.get("reason"))
    elif type_ == "run:end":
        segment.ended = True


def _apply_lifecycle(run: RunNode, lifecycle: list[tuple[float, int, int, dict[str, Any]]]) -> None:
    lifecycle.sort(key=lambda item: (item[0], item[1], item[2]))
    for _at, _rank, _order, record in lifecycle:
        type_ = record["type"]
        if type_ == "run:start":
            run.has_start = True
            run.name = _s(record.get("name"))
            run.root_primitive = _s(record.get("rootPrimitive"))
            run.parent_run_id = _s(record.get("parentRunId"))
            run.triggered_by_span_id = _s(record.get("triggeredBySpanId"))
            run.attributes = _d(record.get("attributes"))
            run.started_ms = parse_ms(record.get("startedAt"))
    if lifecycle:
        last = lifecycle[-1][3]
        if last["type"] == "run:end":
            run.raw_status = _s(last.get("status")) or "ok"
            run.raw_ended_ms = parse_ms(last.get("endedAt"))
            run.error = last.get("error") if isinstance(last.get("error"), dict) else None
        elif last["type"] == "run:suspend":
            run.raw_status = "suspended"
    run.status, run.ended_ms = run.raw_status, run.raw_ended_ms
    if run.status != "running" and run.ended_ms is None and run.raw_status != "suspended":
        run.ended_ms = run.last_activity_ms


def _span(spans: dict[str, SpanNode], span_id: str) -> SpanNode:
    span = spans.get(span_id)
    if span is None:
        span = spans[span_id] = SpanNode(span_id, placeholder=True)
    return span


def _span_record(spans: dict[str, SpanNode], type_: str, record: dict[str, Any]) -> None:
    span = _span(spans, record["spanId"])
    span.record_count += 1
    if type_ in ("span:start", "span"):
        span.placeholder = False
        span.has_start = True
        span.parent_span_id = _s(record.get("parentSpanId"))
        span.name = _s(record.get("name")) or span.name
        span.primitive = _s(record.get("primitive")) or ""
        span.family = _s(record.get("family"))
        span.segment_id = record["segmentId"]
        span.started_ms = parse_ms(record.get("startedAt"))
        span.attributes = _d(record.get("attributes"))
        for key in ("flowId", "stepId", "toolName", "agentId", "deadlineAt", "model", "provider"):
            if record.get(key) is not None:
                span.fields[key] = record[key]
    if type_ in ("span:end", "span"):
        span.metrics = _d(record.get("metrics")) or span.metrics
        if type_ == "span:end":
            span.end_attributes = _d(record.get("attributes")) or span.end_attributes
        span.raw_status = _s(record.get("status")) or "ok"
        span.raw_ended_ms = parse_ms(record.get("endedAt"))
        span.error = record.get("error") if isinstance(record.get("error"), dict) else None
        if not span.has_start:
            span.placeholder = False
            span.segment_id = span.segment_id or record["segmentId"]
            duration = record.get("durationMs")
            if span.raw_ended_ms is not None and isinstance(duration, int | float):
                span.started_ms = span.raw_ended_ms - float(duration)
            span.name = span.name or "(span start not received)"
    if span.raw_status == "running":
        span.raw_ended_ms = None


def _finish_spans(run: RunNode, spans: dict[str, SpanNode]) -> None:
    """Presentation starts from the raw state; spans whose parent never arrived hang under a
    placeholder for that parent (a parent in another run, the span that triggered this run,
    makes a root)."""
    for span in list(spans.values()):
        span.status, span.ended_ms = span.raw_status, span.raw_ended_ms
        if span.status != "running" and span.ended_ms is None:
            span.ended_ms = span.started_ms
        if span.placeholder:
            span.status, span.ended_ms = PLACEHOLDER_STATUS, None
            span.name = span.name or "(span not received)"
            continue
        parent = span.parent_span_id
        if parent is None or (parent in spans and not spans[parent].placeholder):
            continue
        if parent == run.triggered_by_span_id:
            span.cross_run_parent = True
            continue
        span.diagnose("missing-parent-span", f"parent span {parent} was never received", "tree")
        holder = _span(spans, parent)
        holder.name = f"(missing span {parent})"
        holder.status, holder.ended_ms = PLACEHOLDER_STATUS, None
    for span in spans.values():
        if span.placeholder and span.started_ms is None:
            times = [c.started_ms for c in spans.values() if c.parent_span_id == span.span_id and c.started_ms]
            times += [parse_ms(e.get("timestamp")) or 0.0 for e in span.events]
            span.started_ms = min((t for t in times if t), default=run.started_ms)
