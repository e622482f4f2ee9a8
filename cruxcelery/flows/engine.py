"""Executing a flow: one execution per flow at a time (a lease, renewed while it runs), the
handler from the top with completed steps replayed, one segment of the flow's run per execution."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from cruxcelery.core import flushing
from cruxcelery.core.actions import action_context, secret_values
from cruxcelery.core.context import ActiveContext, activate
from cruxcelery.flows.codec import lossless
from cruxcelery.flows.errors import (
    FlowCancelled,
    FlowError,
    FlowExpired,
    FlowSuspended,
    FlowWaiting,
    LeaseLost,
    VersionConflict,
)
from cruxcelery.flows.guard import INFRASTRUCTURE_ERRORS, EngineInterrupted, guarded
from cruxcelery.flows.lease_renewer import HeldLease, renewer
from cruxcelery.flows.routing import OutsideStep, routing
from cruxcelery.flows.run import FlowRun
from cruxcelery.flows.scope import FlowScope
from cruxcelery.flows.snapshot import ErrorInfo, FlowSnapshot
from cruxcelery.telemetry import evidence, ids, otel, redaction
from cruxcelery.telemetry.spans import CruxSpan, RunRef, Segment, SpanRef, new_root_segment

if TYPE_CHECKING:
    from cruxcelery.flows.handle import FlowHandle
    from cruxcelery.flows.manager import FlowRuntime

log = logging.getLogger("cruxcelery.flows")
INTERRUPTED = "runtime.celery.interrupted"
INTERRUPTIONS: tuple[type[BaseException], ...] = (EngineInterrupted, *INFRASTRUCTURE_ERRORS)


def execute(flows: FlowRuntime, handle: FlowHandle[Any], flow_id: str, reason: str,
            failures: list[BaseException] | None = None) -> dict[str, Any]:
    """Run the flow if it has something to do. Returns ``{"flowId", "outcome"}`` (and the run and
    trace ids once the flow has a run): ``busy`` when another execution holds it (that one runs
    again for us: the wake flag), ``unknown`` for a flow id with no snapshot, ``interrupted`` when
    Redis or the broker failed under the engine (the flow stays resumable: its lease lapses and the
    sweeper resumes it). The user error of a segment that failed the flow goes to ``failures``."""
    store = flows.store
    lease_s = flows.crux.settings.flow_lease_s
    try:
        if store.snapshots.head(flow_id) is None:
            log.warning("cruxcelery: no flow %s (deleted, expired or never started); nothing to run", flow_id)
            return {"flowId": flow_id, "outcome": "unknown"}
        token = store.leases.acquire_or_request_wake(flow_id, lease_s)  # records the lease index entry first
    except INFRASTRUCTURE_ERRORS:
        log.warning("cruxcelery: flow %s could not start: the store is unavailable; the sweeper retries",
                    flow_id, exc_info=True)
        return {"flowId": flow_id, "outcome": "interrupted"}
    if token is None:
        return {"flowId": flow_id, "outcome": "busy"}
    lease = HeldLease(flow_id, token, lambda fid, tok: store.leases.renew(fid, tok, lease_s))
    renewer.hold(lease, lease_s)
    outcome = "idle"
    ids_: dict[str, str] = {}
    try:
        while True:
            snap = store.snapshots.load(flow_id)
            if snap is None:
                store.leases.release(flow_id, lease.token)
                break
            if snap.name != handle.name:
                raise FlowError(f"flow {flow_id} is a {snap.name!r} flow, not {handle.name!r}")
            if has_work(flows, snap):
                outcome = run_segment(flows, handle, snap, reason, failures)
            ids_ = _ids_of(snap)
            if lease.lost or not store.leases.release(flow_id, lease.token):
                break
            token = store.leases.acquire_or_request_wake(flow_id, lease_s)
            if token is None:
                break
            lease.token, reason = token, "wake"
    except INTERRUPTIONS:
        # the lease is left to lapse: the sweeper finds the flow in the lease index and resumes it
        log.warning("cruxcelery: flow %s was interrupted by an infrastructure error; it stays resumable",
                    flow_id, exc_info=True)
        outcome = "interrupted"
    finally:
        renewer.release(lease)
    try:
        flows.timers.sweep()
    except INFRASTRUCTURE_ERRORS:
        log.warning("cruxcelery: the timer sweep after flow %s failed", flow_id, exc_info=True)
    return {"flowId": flow_id, "outcome": outcome, **ids_}


def _ids_of(snap: FlowSnapshot) -> dict[str, str]:
    """The run and trace ids a user can take from Flower to devtools."""
    tc = snap.trace_context
    return {key: tc[name] for key, name in (("runId", "run_id"), ("traceId", "trace_id")) if tc.get(name)}


def has_work(flows: FlowRuntime, snap: FlowSnapshot) -> bool:
    """Whether executing now can change anything (avoids empty segments on duplicate resumes)."""
    if snap.is_terminal:
        return False
    waiting = snap.waiting
    if snap.status in ("pending", "running") or waiting is None:
        return True
    if waiting.kind == "child":
        return flows.store.children.get(snap.flow_id, waiting.child_key) is not None
    if waiting.kind == "signal":
        overdue = waiting.timeout_at is not None and time.time() * 1000 >= waiting.timeout_at
        signals = flows.store.signals
        # a payload taken for this wait by an execution that died before saving ``running`` is
        # the next execution's to take back
        return (overdue or signals.pending_count(snap.flow_id, waiting.name) > 0
                or signals.taken(snap.flow_id, waiting.occurrence_key))
    return True  # a condition is re-evaluated on every resume


def _open_segment(flows: FlowRuntime, snap: FlowSnapshot, reason: str) -> tuple[Segment, CruxSpan, float]:
    """The segment and ``flow.run`` span of this execution: the run starts on the first one
    (a child run when the flow was started inside another run) and resumes on later ones."""
    recorder = flows.crux.recorder
    tc = dict(snap.trace_context)
    attributes = {"flowId": snap.flow_id}
    if not tc.get("run_id"):
        started_at = time.time()
        parent = SpanRef(tc["trace_id"], tc["triggered_by_span_id"]) if tc.get("trace_id") else None
        if parent is not None:
            new_run = ids.run_id()
            segment = Segment(recorder, RunRef(tc.get("operation_id", new_run), new_run, parent.trace_id))
            segment.run_start(snap.name, "flow.run", parent_run_id=tc.get("parent_run_id"),
                              triggered_by_span_id=parent.span_id, attributes=attributes, started_at=started_at)
            span = segment.start_span(snap.name, "flow.run", parent=parent, flow_id=snap.flow_id,
                                      attributes=attributes)
        else:
            caller = (otel.remote_context(tc["otel_trace_id"], tc["otel_span_id"])
                      if tc.get("otel_trace_id") and tc.get("otel_span_id") else None)
            segment, otel_started = new_root_segment(recorder, snap.name, "flow.run", adopt_current_otel=False,
                                                     otel_parent=caller)
            segment.run_start(snap.name, "flow.run", attributes=attributes, started_at=started_at)
            span = segment.start_span(snap.name, "flow.run", parent=None, started=otel_started,
                                      flow_id=snap.flow_id, attributes=attributes)
        run = segment.run
        tc.update(run_id=run.run_id, operation_id=run.operation_id, trace_id=run.trace_id,
                  root_span_id=span.span_id, run_started_at=repr(started_at))
    else:
        started_at = float(tc.get("run_started_at", time.time()))
        segment = Segment(recorder, RunRef(tc["operation_id"], tc["run_id"], tc["trace_id"]))
        segment.run_resume(reason, tc.get("last_segment_id"))
        span = segment.start_span(snap.name, "flow.run", parent=SpanRef(tc["trace_id"], tc["root_span_id"]),
                                  flow_id=snap.flow_id, attributes={**attributes, "resumeReason": reason})
    tc["last_segment_id"] = segment.segment_id
    snap.trace_context = tc
    return segment, span, started_at


def run_segment(flows: FlowRuntime, handle: FlowHandle[Any], snap: FlowSnapshot, reason: str,
                failures: list[BaseException] | None = None) -> str:
    with flushing.budget(flows.crux.settings.flush_timeout_s):
        return _run_segment(flows, handle, snap, reason, failures)


def _run_segment(flows: FlowRuntime, handle: FlowHandle[Any], snap: FlowSnapshot, reason: str,
                 failures: list[BaseException] | None) -> str:
    segment, span, run_started = _open_segment(flows, snap, reason)
    ctx = ActiveContext(flows.crux, segment, span.ref, snap.name, run_started, span=span, owner=True,
                        flow_id=snap.flow_id)
    run = FlowRun(guarded(flows.store), snap, segment, span, ctx, flows.timers, handle.signals)
    secrets_scope = ExitStack()  # the input's secret values: redacted from all the segment records, stores, logs
    try:
        run.begin()
        args = handle.args.model_validate(snap.input)
        secrets_scope.enter_context(redaction.secrets(secret_values(args)))
        with activate(ctx), routing(OutsideStep(ctx)):
            output = handle.call(FlowScope(run, args), action_context(flows.crux, handle.task, None))
            output = lossless("the flow's return value", output)
        run.save(status="completed", output=output, waiting=None, suspended_at=None)
        span.artifact("output", output)
        span.end("ok")
        segment.run_end("ok", run_started)
        outcome = "completed"
    except (FlowSuspended, FlowWaiting):
        span.end("suspended")
        waiting = run.snap.waiting
        segment.run_suspend(f"{waiting.kind}:{waiting.name}" if waiting else "suspended")
        outcome = run.snap.status
    except FlowCancelled as cancelled:
        if _finish(run, status="cancelled", cancel_reason=cancelled.reason) is not None:
            span.end("cancelled")
            segment.run_end("cancelled", run_started)
            outcome = "cancelled"
        else:
            outcome = _stand_down(run, span)
    except FlowExpired as expired:
        if _finish(run, status="expired") is not None:
            span.end("cancelled")
            segment.run_end("cancelled", run_started, FlowExpired(
                f"flow expired waiting for {expired.args[0] if expired.args else 'a signal'}"))
            outcome = "expired"
        else:
            outcome = _stand_down(run, span)
    except (LeaseLost, VersionConflict) as lost:
        log.warning("cruxcelery: %s; this execution stops", lost)
        span.end("cancelled")
        outcome = "lease_lost"
    except EngineInterrupted:
        span.event(INTERRUPTED, {"flowId": snap.flow_id})
        span.end("cancelled")
        segment.run_suspend("interrupted")
        raise
    except Exception as exc:
        failure = redaction.redact_exception(exc)  # stored, logged and chained to the flow task's failure redacted
        error = error_info(failure)
        ended = _finish(run, status="failed", error=error)
        if ended is not None:
            span.end("error", exc)
            segment.run_end("error", run_started, exc)
            outcome = "failed"
            log.error("cruxcelery: flow %s (%s) failed: %s: %s", snap.flow_id, snap.name,
                      error.name or type(exc).__name__, error.message, exc_info=failure)
        else:
            outcome = _stand_down(run, span)
        if ended is not None and ended.status == "failed" and failures is not None:
            failures.append(failure)  # its task ends FAILURE (not when cancelled meanwhile)
    finally:
        flows.crux.flush()
        secrets_scope.close()
    if run.snap.is_terminal:
        flows.retire(run.snap, handle)
        if run.snap.parent_flow_id:
            flows.resume(run.snap.parent_flow_id, "child_flow")
    return outcome


def error_info(exc: BaseException) -> ErrorInfo:
    """What the snapshot keeps of the error that failed a flow: its summary, storable whatever the
    exception (a message JSON cannot carry, such as one with a lone surrogate, is escaped; an
    exception whose ``str()`` raises is named by its type)."""
    try:
        summary = evidence.summary(exc)
        message, name = str(summary["message"]), summary.get("name")
    except Exception:
        message, name = f"{type(exc).__name__} (its message could not be read)", type(exc).__name__
    return ErrorInfo(message=message.encode("utf-8", "backslashreplace").decode("utf-8"), name=name)


def _finish(run: FlowRun, **changes: Any) -> FlowSnapshot | None:
    """The terminal write, version-checked: returns the flow as it ended, this write's snapshot
    or, when the flow was cancelled (or deleted) from outside meanwhile, that cancellation (which
    stays). Returns ``None`` when another execution wrote the flow since this one read it: the
    flow is live there, so nothing may be recorded as if it had ended."""
    try:
        return run.save(waiting=None, **changes)
    except FlowCancelled as cancelled:
        stored = run.store.snapshots.load(run.flow_id)
        if stored is None:  # deleted
            stored = run.snap.model_copy(update={"status": "cancelled", "cancel_reason": cancelled.reason})
        elif not stored.is_terminal:
            return None
        run.snap = stored  # retired and its parent resumed as any finished flow
        return stored
    except (LeaseLost, VersionConflict):
        return None


def _stand_down(run: FlowRun, span: CruxSpan) -> str:
    """A terminal write lost to another execution: the flow is live there. This one stops quietly:
    no retire, no parent resume, no ``run:end``."""
    log.warning("cruxcelery: flow %s was written by another execution before this one could finish it; "
                "this execution stops", run.flow_id)
    span.end("cancelled")
    return "lease_lost"
