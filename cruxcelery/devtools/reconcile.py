"""Presentation-time reconciliation of a run whose ends never arrived (Crux's Go backend rules,
in Crux's order). It changes only the presentation fields of a ``RunGraph`` built afresh from the
raw records (``status``, ``ended_ms``, ``reconciled_from``, ``diagnostics``); stored records are
never touched.

1. A running ``runtime.celery.task|schedule`` boundary span with a ``...boundary.completed`` or
   ``...failed`` event ends at that event (status from the event; ``failed`` is ``error``).
2. Else, once the latest ``leaseExpiresAt`` of its ``requested`` / ``received`` events has passed,
   it is ``stale``, ended at the lease (``boundary-lease-expired``).
3. A running span under a terminal ancestor, started no later than that ancestor's end, takes
   the ancestor's end and status, or ``ok`` with completion evidence (an ``output`` or
   ``tool.result`` artifact; a ``usage.observed``, ``generation.finished`` or ``tool.result``
   event). Celery twist: ``run_action`` returns at once, so a boundary outlives the span that
   opened it; a boundary whose lease has not passed, and everything under it, is left running.
4. A passed ``deadlineAt`` (the span's field or attribute, ``startedAt + timeoutMs``, or an
   ``operation.deadline`` event) makes a running span ``incomplete`` at the deadline
   (``operation-deadline-exceeded``); its running ancestors and the run become ``incomplete``.
5. A running span whose children are all terminal takes the latest child end and the worst child
   status (ok < skipped < cancelled < suspended < incomplete < stale < error), to a fixpoint; then
   the run from its root spans.
6. Anything still running with no activity for ``stale_after_ms`` (60 s), unless a future lease
   or deadline on itself, an ancestor or a descendant protects it, becomes ``stale``
   (``missing-span-end``) and the run ``incomplete``. A run whose latest lifecycle record is
   ``run:suspend`` is ``suspended``, and spans of a segment that ended with ``run:suspend`` are
   never stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cruxcelery.devtools.graph import Diagnostic, RunGraph, SpanNode
from cruxcelery.devtools.timeutil import parse_ms

__all__ = ["BOUNDARY_PRIMITIVES", "STATUS_RANK", "STALE_AFTER_MS", "reconcile"]

STALE_AFTER_MS = 60_000.0
BOUNDARY_PRIMITIVES = frozenset({
    "runtime.celery.task", "runtime.celery.schedule", "runtime.convex.action", "runtime.convex.schedule",
})
_TERMINAL_EVENTS = frozenset({
    "runtime.celery.boundary.completed", "runtime.celery.boundary.failed",
    "runtime.convex.boundary.completed", "runtime.convex.boundary.failed",
})
_LEASE_EVENTS = frozenset({
    "runtime.celery.boundary.requested", "runtime.celery.boundary.received",
    "runtime.convex.boundary.requested", "runtime.convex.boundary.received",
})
_EVIDENCE_EVENTS = frozenset({"usage.observed", "generation.finished", "tool.result"})
_EVIDENCE_ARTIFACTS = frozenset({"output", "tool.result"})
_EVENT_STATUSES = frozenset({"ok", "error", "cancelled", "suspended", "skipped"})
STATUS_RANK = {"ok": 0, "skipped": 1, "cancelled": 2, "suspended": 3, "incomplete": 4, "stale": 5, "error": 6}


def _attrs(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("attributes")
    return value if isinstance(value, dict) else {}


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: STATUS_RANK.get(s, 0))


class _Run:
    """One reconciliation of one graph at one instant."""

    def __init__(self, graph: RunGraph, now_ms: float, stale_after_ms: float) -> None:
        self.graph = graph
        self.now = now_ms
        self.stale_after = stale_after_ms
        self.order = graph.top_down()
        self.children = graph.children()
        self.leases: dict[str, float] = {}
        self.deadlines: dict[str, float] = {}
        self.recheck: float | None = None

    def later(self, at_ms: float) -> None:
        if at_ms > self.now:
            self.recheck = at_ms if self.recheck is None else min(self.recheck, at_ms)

    def end(self, span: SpanNode, status: str, ended_ms: float | None, source: str) -> None:
        span.status, span.ended_ms, span.reconciled_from = status, ended_ms, source

    # rules 1 and 2 --------------------------------------------------------------------------
    def boundaries(self) -> None:
        for span in self.order:
            if not span.running or span.primitive not in BOUNDARY_PRIMITIVES:
                continue
            terminal = [e for e in span.events if e.get("name") in _TERMINAL_EVENTS]
            if terminal:
                event = max(terminal, key=lambda e: parse_ms(e.get("timestamp")) or 0.0)
                status = _attrs(event).get("status")
                if str(event.get("name", "")).endswith(".failed"):
                    status = "error"
                elif status not in _EVENT_STATUSES:
                    status = "ok"
                self.end(span, str(status), parse_ms(event.get("timestamp")), "boundary.event")
                continue
            leases = [parse_ms(_attrs(e).get("leaseExpiresAt")) for e in span.events if e.get("name") in _LEASE_EVENTS]
            lease = max((x for x in leases if x is not None), default=None)
            if lease is None:
                continue
            if lease <= self.now:
                self.end(span, "stale", lease, "boundary.lease")
                span.diagnose("boundary-lease-expired",
                              "the boundary's lease passed with no completed or failed acknowledgement", "2")
            else:
                self.leases[span.span_id] = lease
                self.later(lease)

    # rule 3 -------------------------------------------------------------------------------
    def terminal_ancestors(self) -> None:
        leased = self.under(set(self.leases))
        for span in self.order:
            if not span.running or span.placeholder or span.span_id in leased:
                continue
            ancestor = next((a for a in self.ancestors(span) if not a.running), None)
            if ancestor is None or ancestor.placeholder or ancestor.ended_ms is None:
                continue
            if span.started_ms is None or span.started_ms > ancestor.ended_ms:
                continue
            evidence = any(e.get("name") in _EVIDENCE_EVENTS for e in span.events) or any(
                a.get("kind") in _EVIDENCE_ARTIFACTS for a in span.artifacts)
            self.end(span, "ok" if evidence else ancestor.status, ancestor.ended_ms, "terminal.ancestor")

    def ancestors(self, span: SpanNode) -> Iterator[SpanNode]:
        """The span's parent, its parent's parent... up to the root, or once round a parent cycle."""
        seen = {span.span_id}
        ancestor = self.parent(span)
        while ancestor is not None and ancestor.span_id not in seen:
            seen.add(ancestor.span_id)
            yield ancestor
            ancestor = self.parent(ancestor)

    def parent(self, span: SpanNode) -> SpanNode | None:
        if span.parent_span_id is None or span.cross_run_parent:
            return None
        return self.graph.spans.get(span.parent_span_id)

    def under(self, roots: set[str]) -> set[str]:
        """``roots`` and all their descendants."""
        out = set(roots)
        stack = list(roots)
        while stack:
            for child in self.children.get(stack.pop(), []):
                if child.span_id not in out:
                    out.add(child.span_id)
                    stack.append(child.span_id)
        return out

    def above(self, span_ids: set[str]) -> set[str]:
        out: set[str] = set()
        for span_id in span_ids:
            span = self.graph.spans.get(span_id)
            while span is not None and span.span_id not in out:
                out.add(span.span_id)
                span = self.parent(span)
        return out

    # rule 4 -------------------------------------------------------------------------------
    def deadline_of(self, span: SpanNode) -> float | None:
        attrs = span.attributes
        deadline = parse_ms(span.fields.get("deadlineAt")) or parse_ms(attrs.get("deadlineAt"))
        timeout = attrs.get("timeoutMs")
        if deadline is None and isinstance(timeout, int | float) and timeout > 0 and span.started_ms is not None:
            deadline = span.started_ms + float(timeout)
        for event in span.events:
            if event.get("name") == "operation.deadline":
                at = parse_ms(_attrs(event).get("deadlineAt"))
                if at is not None and (deadline is None or at > deadline):
                    deadline = at
        return deadline

    def deadlines_passed(self) -> None:
        causes: list[tuple[SpanNode, float]] = []
        for span in self.order:
            if not span.running or span.placeholder:
                continue
            deadline = self.deadline_of(span)
            if deadline is None:
                continue
            if deadline > self.now:
                self.deadlines[span.span_id] = deadline
                self.later(deadline)
                continue
            self.end(span, "incomplete", deadline, "operation.deadline")
            span.diagnose("operation-deadline-exceeded", "the operation's deadline passed before its end arrived", "4")
            causes.append((span, deadline))
        run = self.graph.run
        for cause, deadline in causes:
            for ancestor in self.ancestors(cause):
                if ancestor.running and not ancestor.placeholder:
                    self.end(ancestor, "incomplete", deadline, "descendant.operation.deadline")
        if causes and run.status == "running":
            run.status, run.ended_ms = "incomplete", max(d for _s, d in causes)
            run.reconciled_from = "descendant.operation.deadline"

    # rule 5 -------------------------------------------------------------------------------
    def terminal_children(self) -> None:
        changed = True
        bottom_up = list(reversed(self.order))
        while changed:
            changed = False
            for span in bottom_up:
                kids = self.children.get(span.span_id)
                if not span.running or span.placeholder or not kids:
                    continue
                summary = _summary(kids)
                if summary is not None:
                    self.end(span, summary[0], summary[1], "terminal.children")
                    changed = True
        run = self.graph.run
        roots = [s for s in self.children.get(None, []) if not s.placeholder]
        if run.status == "running" and roots:
            summary = _summary(roots)
            if summary is not None:
                run.status, run.ended_ms, run.reconciled_from = summary[0], summary[1], "terminal.children"

    # rule 6 -------------------------------------------------------------------------------
    def staleness(self) -> None:
        run = self.graph.run
        if run.status == "suspended":
            return
        future = set(self.leases) | set(self.deadlines)
        protected = self.under(future) | self.above(future)
        suspended_segments = {s.segment_id for s in self.graph.segments.values() if s.suspended and not s.ended}
        activity = self.activity()
        went_stale = False
        for span in self.order:
            if not span.running or span.placeholder or span.span_id in protected:
                continue
            if span.segment_id in suspended_segments:
                continue
            last = activity.get(span.span_id)
            if last is None:
                continue
            if self.now - last > self.stale_after:
                span.status, span.reconciled_from = "stale", "missing.end"
                span.diagnose("missing-span-end", "no end and no activity for "
                              f"{self.stale_after / 1000:g} s: the process that ran it probably died", "6")
                went_stale = True
            else:
                self.later(last + self.stale_after)
        if run.status != "running" or protected:
            return
        open_spans = any(s.running and not s.placeholder for s in self.order)
        last_run = run.last_activity_ms
        if went_stale or (not open_spans and last_run is not None and self.now - last_run > self.stale_after):
            run.status, run.ended_ms, run.reconciled_from = "incomplete", last_run, "missing.end"
            run.diagnostics.append(_run_diagnostic(self.stale_after))
        elif last_run is not None:
            self.later(last_run + self.stale_after)

    def activity(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for span in reversed(self.order):
            times = [span.started_ms or 0.0]
            times += [parse_ms(e.get("timestamp")) or 0.0 for e in span.events]
            times += [parse_ms(a.get("createdAt")) or 0.0 for a in span.artifacts]
            for child in self.children.get(span.span_id, []):
                times.append(out.get(child.span_id, 0.0))
                times.append(child.ended_ms or 0.0)
            best = max(times)
            if best > 0:
                out[span.span_id] = best
        return out


def _run_diagnostic(stale_after_ms: float) -> Diagnostic:
    return Diagnostic("missing-span-end",
                      f"the run has no end and no activity for {stale_after_ms / 1000:g} s", "6")


def _summary(spans: list[SpanNode]) -> tuple[str, float] | None:
    ends: list[float] = []
    for span in spans:
        if span.running or span.ended_ms is None:
            return None
        ends.append(span.ended_ms)
    return _worst([s.status for s in spans]), max(ends)


def reconcile(graph: RunGraph, now_ms: float, stale_after_ms: float = STALE_AFTER_MS) -> float | None:
    """Apply the six rules to ``graph`` in place, as of ``now_ms``. Returns when the presentation
    may change next with no new record (a lease, deadline or staleness threshold), or ``None``."""
    job = _Run(graph, now_ms, stale_after_ms)
    job.boundaries()
    job.terminal_ancestors()
    job.deadlines_passed()
    job.terminal_children()
    job.staleness()
    return job.recheck
