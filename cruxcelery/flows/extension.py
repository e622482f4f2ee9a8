"""Flows as one runtime extension: calls inside a step become durable children (``route_child``),
durable children run once (``admits``) and report their final outcome, delays longer than one
countdown hop go to the flow timers (``deferred_publisher``), and every worker runs the sweeper
that recovers flows and fires timers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cruxcelery.flows.routing as routing
from cruxcelery.core.envelope import HEADER
from cruxcelery.core.extensions import ChildCall, DeferredPublisher, Execution, Extension, Worker
from cruxcelery.core.outcomes import Outcome
from cruxcelery.flows.child_runs import ChildRuns
from cruxcelery.flows.guard import INFRASTRUCTURE_ERRORS
from cruxcelery.flows.handle import FLOW_TASK_PREFIX
from cruxcelery.flows.sweeper import MESSAGE_OPTIONS

if TYPE_CHECKING:
    from celery.result import AsyncResult

    from cruxcelery.core.context import ActiveContext
    from cruxcelery.flows.manager import FlowRuntime


REPORT_RETRY_S = 5.0


class FlowsExtension(Extension):
    name = "flows"

    def __init__(self, flows: FlowRuntime) -> None:
        self.flows = flows
        self.child_runs = ChildRuns(flows)

    def on_received(self, execution: Execution) -> None:
        """A worker reserved a flow task or a durable child: claim it for this worker, so the
        sweeper re-publishes it if the worker dies before it ends (as it was: its ETA, expiry and
        retry count too, so a countdown still waits and ``max_retries`` holds across deaths)."""
        if execution.task_id is None or not _must_not_be_lost(execution) or not self.flows.sweeper.running:
            return  # without this worker's heartbeat a claim would look dead at once
        request = execution.request
        delivery = getattr(request, "delivery_info", None) or {}
        headers = getattr(request, "request_dict", None) or {}
        message = {
            "name": execution.task_name, "args": list(getattr(request, "args", None) or ()),
            "kwargs": dict(getattr(request, "kwargs", None) or {}),
            "envelope": headers.get(HEADER),
            "routing_key": delivery.get("routing_key"), "exchange": delivery.get("exchange"),
            **{k: v for k in MESSAGE_OPTIONS if (v := headers.get(k))},
        }
        self.flows.store.claims.claim(execution.task_id, self.flows.sweeper.worker_id, message)

    def admits(self, execution: Execution) -> bool:
        """A durable child runs once: not after its outcome is stored, nor while a live execution
        runs it (``child_runs``)."""
        envelope = execution.envelope
        if execution.task_id is None or envelope is None or envelope.flow_id is None or envelope.flow_step is None:
            return True
        attempt = int(getattr(execution.request, "retries", 0) or 0)
        return self.child_runs.admit(envelope.flow_id, envelope.flow_step, execution.task_id, attempt)

    def on_execution_close(self, execution: Execution, outcome: Outcome) -> None:
        """A durable step's child ended for good (in whichever worker ran it, or decided by its
        worker's main process): store its outcome once and resume the flow, then let go of it (a
        duplicate delivery finds the outcome). A retry, a replacement or a process going away
        mid-task reports nothing yet and keeps its claim (the retry's message claims the same task
        id)."""
        try:
            if outcome.terminal:
                self._report(execution, outcome)
        finally:
            if execution.task_id is not None:
                self.child_runs.end(execution.task_id)

    def _report(self, execution: Execution, outcome: Outcome) -> None:
        """Report, then let go of the claim: a process that dies between the two leaves a claim,
        and the delivery it causes finds the outcome stored. A Redis blip is retried; an outage
        longer than ``REPORT_RETRY_S`` keeps the claim (and the runner record lapses)."""
        envelope = execution.envelope
        if envelope is not None and envelope.flow_id is not None and envelope.flow_step is not None:
            flow_id, step = envelope.flow_id, envelope.flow_step
            retrying(lambda: self.flows.report_child(flow_id, step, execution.task_id, outcome), REPORT_RETRY_S)
        if execution.task_id is not None and _must_not_be_lost(execution):
            self.flows.store.claims.unclaim(execution.task_id)

    def route_child(self, ctx: ActiveContext, call: ChildCall) -> AsyncResult[Any] | None:
        route = routing.current()
        return route(call) if route is not None else None

    def deferred_publisher(self) -> DeferredPublisher:
        return self.flows.timers

    def on_worker_ready(self, worker: Worker) -> None:
        self.flows.on_worker_ready()

    def on_worker_shutdown(self, worker: Worker) -> None:
        if worker.main:
            self.flows.on_worker_shutdown(requeued=worker.clean)


def retrying(call: Callable[[], None], within_s: float) -> None:
    """``call()``, again after an infrastructure error (backing off from 50 ms) for ``within_s``."""
    deadline = time.monotonic() + within_s
    delay = 0.05
    while True:
        try:
            call()
            return
        except INFRASTRUCTURE_ERRORS:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _must_not_be_lost(execution: Execution) -> bool:
    """Flow tasks and durable children: their messages are re-published if their worker dies."""
    envelope = execution.envelope
    return execution.task_name.startswith(FLOW_TASK_PREFIX) or (envelope is not None and envelope.flow_step is not None)
