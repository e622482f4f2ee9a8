"""``crux.flow(name, args=Model, signals={...})``: the handle a flow is defined and driven with."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celery import Task
from pydantic import BaseModel

from cruxcelery.core import args as action_args
from cruxcelery.core.context import current
from cruxcelery.errors import ConfigurationError
from cruxcelery.flows import engine
from cruxcelery.flows.codec import lossless
from cruxcelery.flows.errors import FlowTaskFailed, IdempotencyConflict
from cruxcelery.flows.guard import typed
from cruxcelery.flows.results import FlowResult, result_of
from cruxcelery.flows.routing import warn_outside_step
from cruxcelery.flows.snapshot import FlowSnapshot, FlowSummary
from cruxcelery.flows.store.keys import create_flow_id, validate_flow_id, validate_idempotency_key, validate_signal_name
from cruxcelery.telemetry import otel

if TYPE_CHECKING:
    from cruxcelery.core.context import ActionContext
    from cruxcelery.flows.manager import FlowRuntime
    from cruxcelery.flows.scope import FlowScope

A = TypeVar("A", bound=BaseModel)
Handler = Callable[["FlowScope[A]", A, "ActionContext"], Any]
FLOW_TASK_PREFIX = "crux.flow."
log = logging.getLogger("cruxcelery.flows")


class FlowHandle(Generic[A]):
    """``.handler`` registers the function; ``.task`` starts and resumes it on workers;
    ``.start`` / ``.signal`` / ``.status`` / ``.result`` / ``.cancel`` drive it from anywhere."""

    def __init__(self, flows: FlowRuntime, name: str, args: type[A],
                 signals: dict[str, type[BaseModel]] | None) -> None:
        self._flows = flows
        self.name = name
        self.args = args
        self.signals: dict[str, type[BaseModel]] = {validate_signal_name(k): v for k, v in (signals or {}).items()}
        self._fn: Handler[A] | None = None
        self.task: Task[Any, Any] = self._register_task()

    def _register_task(self) -> Task[Any, Any]:
        handle = self

        def run_flow(self: Task[Any, Any], flow_id: str, reason: str = "start") -> dict[str, Any]:
            failures: list[BaseException] = []
            result = engine.execute(handle._flows, handle, flow_id, reason, failures)
            if failures:  # recorded already: the task ends FAILURE with the user's error as its cause
                error = failures[-1]
                ids = " ".join(f"{k}={result[k]}" for k in ("runId", "traceId") if k in result)
                raise FlowTaskFailed(f"flow {handle.name} {flow_id} failed: {type(error).__name__}: "
                                        f"{engine.error_info(error).message} ({ids})", flow_id) from error
            return result

        app: Any = self._flows.crux.app
        task: Task[Any, Any] = app.task(
            name=f"{FLOW_TASK_PREFIX}{self.name}", bind=True, acks_late=True, reject_on_worker_lost=True,
            shared=False,
        )(run_flow)
        return task

    def handler(self, fn: Handler[A]) -> Handler[A]:
        """Register ``fn(scope, args, ctx) -> result`` as the flow's body."""
        if self._fn is not None:
            raise ConfigurationError(f"flow {self.name!r} already has a handler")
        self._fn = fn
        return fn

    def call(self, scope: FlowScope[A], ctx: ActionContext) -> Any:
        if self._fn is None:
            raise ConfigurationError(f"flow {self.name!r} has no handler: decorate one with @handle.handler")
        return self._fn(scope, scope.input, ctx)

    # -- driving ---------------------------------------------------------------------------------
    def _create(self, args: Any, flow_id: str | None, idempotency_key: str | None) -> tuple[str, bool]:
        model = action_args.coerce(self.args, (args,), {}, f"flow {self.name}")
        flow_id = validate_flow_id(flow_id) if flow_id is not None else create_flow_id()
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
        ctx = current()
        warn_outside_step(f"{self.name}.start()")
        trace: dict[str, str] = {}
        if ctx is not None:  # started inside a run: the flow is a child run of it
            trace = {"trace_id": ctx.run.trace_id, "operation_id": ctx.run.operation_id,
                     "parent_run_id": ctx.run.run_id, "triggered_by_span_id": ctx.parent.span_id}
        elif (caller := otel.current_span_context()) is not None:  # a traced request: its trace is the flow's
            trace = {"otel_trace_id": format(caller.trace_id, "032x"), "otel_span_id": format(caller.span_id, "016x")}
        # JSON a snapshot holds, or FlowError; secrets revealed: every run of the handler gets their values
        stored_input = lossless(f"the input of flow {self.name}", action_args.to_wire(model, reveal=True))
        snapshot = FlowSnapshot(flow_id=flow_id, name=self.name, input=stored_input,
                                parent_flow_id=ctx.flow_id if ctx is not None else None,
                                signals={name: model.model_json_schema() for name, model in self.signals.items()},
                                trace_context=trace, idempotency_key=idempotency_key)
        created_id, created = self._flows.store.snapshots.create(  # in the lease index: found if never run
            snapshot, idempotency_key, queue=self.queue(), recover_after_s=2 * self._flows.crux.settings.flow_lease_s)
        if not created:  # the same key (or id) again: only for the same input
            existing = self._flows.store.snapshots.load(created_id)
            if existing is not None and (existing.name != self.name or existing.input != stored_input):
                what = f"idempotency key {idempotency_key!r}" if idempotency_key is not None else "flow id"
                raise IdempotencyConflict(f"flow {self.name!r}: the {what} names flow {created_id}, started with "
                                          "another input; use a new key for new input")
        return created_id, created

    def queue(self) -> str | None:
        """The queue this app routes the flow's task to; recorded so that a resume published by
        any process (an actions-only worker, a web process) lands where the flow's workers are."""
        try:
            queue = self._flows.crux.app.amqp.router.route({}, self.task.name).get("queue")
        except Exception:
            return None
        name = getattr(queue, "name", queue)
        return name if isinstance(name, str) and name else None

    @typed
    def start(self, args: A | dict[str, Any], flow_id: str | None = None,
              idempotency_key: str | None = None) -> str:
        """Write the ``pending`` snapshot, enqueue the flow, return its id at once. With an
        ``idempotency_key`` (or an existing ``flow_id``) a repeated call returns the same flow,
        and publishes it again while it is still ``pending`` (its first publish may have failed).
        ``StoreUnavailable`` / ``BrokerUnavailable``: either nothing of the flow was written, or it
        is stored whole (listed, ``pending``) and a retried ``start`` or the sweeper publishes it;
        with a ``flow_id``, ``status()`` tells which."""
        created_id, created = self._create(args, flow_id, idempotency_key)
        head = None if created else self._flows.store.snapshots.head(created_id)
        if created or (head is not None and head.status == "pending"):
            self._flows.dispatch(created_id, self.name, "start", self.queue())
        return created_id

    @typed
    def run_inline(self, args: A | dict[str, Any], flow_id: str | None = None) -> FlowResult | None:
        """Run the flow in the caller until it completes or suspends (for app-owned wrappers)."""
        created_id, _ = self._create(args, flow_id, None)
        engine.execute(self._flows, self, created_id, "start")
        return self.result(created_id)

    def signal(self, flow_id: str, name: str, payload: Any = None, *, signal_id: str | None = None) -> None:
        """Validate ``payload``, store it (once per ``signal_id``) and schedule the resume."""
        self._flows.signal(flow_id, name, payload, signal_id)

    @typed
    def status(self, flow_id: str) -> FlowSummary:
        return self._flows.store.snapshots.require(validate_flow_id(flow_id)).summary()

    @typed
    def snapshot(self, flow_id: str) -> FlowSnapshot:
        """The whole stored snapshot (steps, what it waits for, rejected signals)."""
        return self._flows.store.snapshots.require(validate_flow_id(flow_id))

    @typed
    def result(self, flow_id: str, timeout_s: float | None = None) -> FlowResult | None:
        """The flow's result now: ``None`` while pending, running or waiting on a child. With
        ``timeout_s``, first wait up to that long for the flow to finish."""
        deadline = time.monotonic() + (timeout_s or 0)
        while True:
            snapshot = self._flows.store.snapshots.require(validate_flow_id(flow_id))
            if snapshot.is_terminal or time.monotonic() >= deadline:
                return result_of(snapshot)
            time.sleep(0.02)

    def cancel(self, flow_id: str, reason: str | None = None) -> FlowSummary:
        return self._flows.cancel(flow_id, reason)
