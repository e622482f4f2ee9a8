"""``FlowRuntime``: the flows of one ``Crux``: their handles, the Redis store, dispatching resumes
(through the outbox), signals, child outcomes, retention and the sweeper."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cruxcelery.core.outcomes import Outcome
from cruxcelery.core.publishing import quiet
from cruxcelery.errors import ConfigurationError, InvalidArgs
from cruxcelery.flows.codec import dumps, lossless
from cruxcelery.flows.errors import FlowError, FlowNotFound, FlowNotWaiting, SignalRejected
from cruxcelery.flows.guard import typed
from cruxcelery.flows.handle import FLOW_TASK_PREFIX, FlowHandle
from cruxcelery.flows.snapshot import TERMINAL_STATUSES, FlowSnapshot, FlowStatus, FlowSummary
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys, validate_flow_id, validate_flow_name, validate_signal_name
from cruxcelery.flows.sweeper import Sweeper
from cruxcelery.flows.timers import WAKE_TASK, Timers
from cruxcelery.telemetry import evidence, otel
from cruxcelery.telemetry.redis_urls import SERVER_SCHEMES, redis_client

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

log = logging.getLogger("cruxcelery.flows")
_MAX_AGE_S = 1e12  # older_than_s: seconds (beyond it, epoch milliseconds overflow)
_FIRST_TASK = uuid.UUID("6f0c1c5e-8a57-4b1e-9a0e-63727578666c")


def first_task_id(flow_id: str) -> str:
    """The Celery task id of a flow's start task (derived, so any process can name it)."""
    return str(uuid.uuid5(_FIRST_TASK, flow_id))


class FlowRuntime:
    def __init__(self, crux: Runtime) -> None:
        self.crux = crux
        self.handles: dict[str, FlowHandle[Any]] = {}
        self.timers = Timers(self)
        self.sweeper = Sweeper(self)
        self._store: RedisFlowStore | None = None
        self._lock = threading.Lock()
        app: Any = crux.app
        app.task(name=WAKE_TASK, acks_late=True, ignore_result=True, shared=False)(self._wake)

    def redis_url(self) -> str:
        """``CRUX_REDIS_URL``, else the broker's URL when the broker is Redis. A non-Redis broker
        with no ``CRUX_REDIS_URL`` is a ``ConfigurationError``: flows never guess a server."""
        if self.crux.settings.redis_url:
            return self.crux.settings.redis_url
        broker = str(self.crux.app.conf.broker_url or "")
        if broker.startswith(SERVER_SCHEMES):
            return broker
        raise ConfigurationError(
            f"flows need Redis: the broker ({broker.split('://')[0] or 'unset'}) is not Redis and "
            "CRUX_REDIS_URL is not set. Set CRUX_REDIS_URL=redis://host:6379/0."
        )

    @property
    def store(self) -> RedisFlowStore:
        """Connects lazily: nothing talks to Redis before a flow is used."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    timeout = self.crux.settings.redis_timeout_s
                    client = redis_client(self.redis_url(), socket_timeout=timeout,
                                          socket_connect_timeout=timeout, health_check_interval=30)
                    self._store = RedisFlowStore(client, FlowKeys(self.crux.settings.key_prefix))
        return self._store

    def flow(self, name: str, args: type[BaseModel], signals: dict[str, type[BaseModel]] | None) -> FlowHandle[Any]:
        validate_flow_name(name)
        if name in self.handles:
            raise ConfigurationError(f"a flow named {name!r} is already defined")
        handle: FlowHandle[Any] = FlowHandle(self, name, args, signals)
        self.handles[name] = handle
        return handle

    # -- dispatching -----------------------------------------------------------------------------
    def dispatch(self, flow_id: str, name: str, reason: str, queue: str | None) -> None:
        """Publish the flow's task. The intent is written to the outbox first and cleared once
        the broker took the message, so a publish that fails (or a process that dies before it)
        is retried by the sweeper. Raises ``BrokerUnavailable`` / ``StoreUnavailable``."""
        self.crux.check_json_only()
        if reason == "signal":
            self._trace_signal(flow_id, name)
        member = self.store.outbox.add(flow_id, name, reason, queue)
        self.publish_flow_task(flow_id, name, reason, queue)
        self.store.outbox.done(member)

    def _trace_signal(self, flow_id: str, name: str) -> None:
        """A traced request signals the flow: a ``flow.signal`` span in the flow's trace (under its
        root span), linked to the request's span."""
        caller = otel.current_span_context()
        if caller is None or not otel.enabled():
            return
        try:
            snap = self.store.snapshots.load(flow_id)
            tc = snap.trace_context if snap is not None else {}
            if tc.get("trace_id") and tc.get("root_span_id"):
                parent = otel.remote_context(tc["trace_id"], tc["root_span_id"])
            elif tc.get("otel_trace_id") and tc.get("otel_span_id"):
                parent = otel.remote_context(tc["otel_trace_id"], tc["otel_span_id"])
            else:
                return
            otel.linked_span(f"{name} · signal", parent, caller,
                             {"crux.primitive": "flow.signal", "crux.flow_id": flow_id,
                              **({"crux.run_id": tc["run_id"]} if tc.get("run_id") else {})})
        except Exception:  # tracing never blocks a signal
            log.warning("cruxcelery: could not trace the signal of flow %s", flow_id, exc_info=True)

    def publish_flow_task(self, flow_id: str, name: str, reason: str, queue: str | None) -> None:
        """Flower shows it as ``<flow name> · <reason>``; the start task's id is derived from the
        flow id, and every later task of the flow names it as its root and parent."""
        options: dict[str, Any] = {"queue": queue} if queue else {}
        first = first_task_id(flow_id)
        if reason == "start":
            options["task_id"] = first
        else:
            options.update(root_id=first, parent_id=first)
        with quiet():
            self.crux.app.send_task(f"{FLOW_TASK_PREFIX}{name}", kwargs={"flow_id": flow_id, "reason": reason},
                                    shadow=f"{name} · {reason}", argsrepr="()",
                                    kwargsrepr=repr({"flow_id": flow_id, "reason": reason}), **options)

    def resume(self, flow_id: str, reason: str) -> None:
        """Publish the flow's task now; its execution decides whether there is work."""
        head = self.store.snapshots.head(flow_id)
        if head is not None:
            self.dispatch(flow_id, head.name, reason, head.queue)

    # -- signals ---------------------------------------------------------------------------------
    @typed
    def signal(self, flow_id: str, name: str, payload: Any = None, signal_id: str | None = None) -> None:
        """Validate, store (once per ``signal_id``), then publish the resume."""
        validate_flow_id(flow_id)
        validate_signal_name(name)
        if signal_id is not None:
            validate_flow_id(signal_id)
        head = self.store.snapshots.head(flow_id)
        if head is None:
            raise FlowNotFound(flow_id)
        if head.status in TERMINAL_STATUSES:
            raise FlowNotWaiting(f"flow {flow_id} is {head.status}; it takes no more signals")
        payload = self._validated(flow_id, head.name, name, payload)
        self.store.signals.push(flow_id, name, payload, signal_id)
        self.dispatch(flow_id, head.name, "signal", head.queue)

    def _validated(self, flow_id: str, flow_name: str, name: str, payload: Any) -> Any:
        """The payload as it will be stored: validated by the declared signal model (or, in a
        process that never imported the flow, the declared schema the snapshot recorded), else by
        the schema of the wait it is for; a name the flow does not declare is refused."""
        handle = self.handles.get(flow_name)
        model = handle.signals.get(name) if handle is not None else None
        declared = set(handle.signals) if handle is not None else None
        if model is None:
            snap = self.store.snapshots.load(flow_id)
            if snap is not None:
                declared = set(snap.signals) if declared is None else declared
                schema = snap.signals.get(name) or _waiting_schema(snap, name)
                model = _model_from_schema(schema) if schema else None
        if declared and name not in declared:
            raise SignalRejected(f"flow {flow_name!r} declares no signal {name!r} (it has {sorted(declared)})")
        if model is not None:
            try:
                checked = model.model_validate(payload)
            except ValidationError as exc:
                raise SignalRejected.from_validation(name, flow_id, exc) from None
            if handle is not None and handle.signals.get(name) is model:
                payload = checked.model_dump(mode="json")
        try:
            size = len(dumps(payload).encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise SignalRejected(f"signal {name!r} payload is not JSON: {type(exc).__name__}: {exc}") from None
        if size > self.crux.settings.signal_max_bytes:
            raise SignalRejected(f"signal {name!r} payload is {size} bytes, over CRUX_SIGNAL_MAX_BYTES "
                                 f"({self.crux.settings.signal_max_bytes})")
        try:  # the bound of every persisted value: not nested deeper than a snapshot can hold
            return lossless(f"signal {name!r} payload", payload)
        except FlowError as exc:
            raise SignalRejected(str(exc)) from None

    @typed
    def cancel(self, flow_id: str, reason: str | None = None) -> FlowSummary:
        """Cancel a flow (a no-op on a finished one); a pending resume then finds it cancelled."""
        if reason is not None and not isinstance(reason, str):
            raise FlowError(f"a cancel reason must be a string or None, not {type(reason).__name__}")
        if reason is not None:
            lossless("the cancel reason", reason)
        before = self.store.snapshots.require(validate_flow_id(flow_id))
        if before.is_terminal:  # a no-op: nothing is written
            return before.summary()
        snap = self.store.snapshots.cancel(flow_id, reason)
        if snap.status == "cancelled":
            self.retire(snap, self.handles.get(snap.name))
        return snap.summary()

    @typed
    def list_flows(self, status: FlowStatus | None = None, name: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[FlowSummary], str | None]:
        return self.store.listing.page(status=status, name=name, limit=limit, cursor=cursor)

    # -- retention -------------------------------------------------------------------------------
    def retire(self, snap: FlowSnapshot, handle: FlowHandle[Any] | None) -> None:
        """A finished flow: drop its timers and leftover signals, and let every key of it expire
        after ``CRUX_FLOW_RETENTION_S``."""
        names = self._signal_names(snap, handle)
        self.store.retention.retire(snap, names, self.crux.settings.flow_retention_s)

    def retire_by_id(self, flow_id: str) -> None:
        """Retire a finished flow again (idempotent): its execution may have died before."""
        snap = self.store.snapshots.load(flow_id)
        if snap is not None and snap.status in TERMINAL_STATUSES:
            self.retire(snap, self.handles.get(snap.name))
        else:
            self.store.leases.untrack(flow_id)

    @typed
    def delete(self, flow_id: str) -> bool:
        """Delete a flow and every key of it now (a running execution then stops at its next
        write). Returns whether it existed."""
        snap = self.store.snapshots.load(validate_flow_id(flow_id))
        if snap is None:
            return False
        self.store.retention.delete(snap, self._signal_names(snap, self.handles.get(snap.name)))
        return True

    @typed
    def purge(self, status: FlowStatus | None = None, older_than_s: float = 0.0, limit: int = 1000) -> int:
        """Delete finished flows (of ``status``, one of the terminal ones, else all of them) last
        updated more than ``older_than_s`` ago. Returns how many were deleted. Index entries of
        flows already gone (expired) are removed on the way, never counted."""
        statuses = [status] if status is not None else sorted(TERMINAL_STATUSES)
        for wanted in statuses:
            if not isinstance(wanted, str) or wanted not in TERMINAL_STATUSES:
                raise InvalidArgs(f"purge_flows only deletes finished flows ({sorted(TERMINAL_STATUSES)}), "
                                  f"not {wanted!r} ones")
        if isinstance(older_than_s, bool) or not isinstance(older_than_s, int | float) or not (
                0 <= older_than_s < _MAX_AGE_S):
            raise InvalidArgs(f"older_than_s must be a number of seconds >= 0, got {older_than_s!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgs(f"limit must be an integer >= 1, got {limit!r}")
        self.store.retention.forget_expired()
        deleted = 0
        for wanted in statuses:
            while deleted < limit:
                found = self.store.retention.older_than(wanted, older_than_s, limit - deleted)
                if not found:
                    break
                deleted += sum(self._purge_one(flow_id, wanted) for flow_id in found)
        return deleted

    def _purge_one(self, flow_id: str, status: FlowStatus) -> bool:
        """Delete the flow if it is still ``status``; else its entry in that index is stale (the
        flow moved on, or is gone: then its entry in the all index goes too). Every call takes
        the flow out of that index, so a purge always moves on."""
        snapshots = self.store.snapshots
        snap = snapshots.load(flow_id)
        if snap is None or snap.status != status:
            snapshots.drop_stale_entry(self.store.keys.status_index(status), status, flow_id)
            if snap is None:
                snapshots.drop_stale_entry(self.store.keys.all_index(), None, flow_id)
            return False
        self.store.retention.delete(snap, self._signal_names(snap, self.handles.get(snap.name)))
        return True

    def _signal_names(self, snap: FlowSnapshot, handle: FlowHandle[Any] | None) -> list[str]:
        names = set(handle.signals) if handle is not None else set()
        if snap.waiting is not None and snap.waiting.kind == "signal":
            names.add(snap.waiting.name)
        names.update(key.split("#", 1)[0] for key in self.store.signals.delivered(snap.flow_id))
        return sorted(names)

    # -- durable children ------------------------------------------------------------------------
    def report_child(self, flow_id: str, step_key: str, task_id: str | None, outcome: Outcome) -> None:
        """A durable step's child ended for good: store its outcome (lossless JSON) once, first
        writer wins, and resume the flow. Only the task the flow recorded as that step attempt's
        child reports: any other task whose envelope names the step is ignored with a warning.
        A flow waiting on the step is resumed even when an earlier run of the same child stored
        the outcome first (after a crash before ``waiting`` was saved, the re-run step published
        the child again and waits on it)."""
        snap = self.store.snapshots.load(flow_id)
        recorded = snap.child_task_of(step_key) if snap is not None else None
        if task_id is None or recorded != task_id:
            log.warning("cruxcelery: ignoring the outcome of task %s for step %r of flow %s: it is not the "
                        "child it recorded (%s)", task_id, step_key, flow_id, recorded or "none")
            return
        output, error = None, outcome.error if outcome.failed else None
        if error is None:
            try:
                output = lossless(f"the result of child task {task_id}", outcome.result)
            except FlowError as exc:
                error = exc
        record = {"ok": error is None, "output": output, "taskId": task_id,
                  "error": evidence.summary(error) if error is not None else None}
        waited = snap is not None and snap.waiting is not None and snap.waiting.child_key == step_key
        if self.store.children.put(flow_id, step_key, record) or waited:
            self.resume(flow_id, "child")

    def resume_waiting_on_child(self, flow_id: str, step_key: str) -> None:
        """Resume the flow if it waits on this step's child (whose outcome is stored)."""
        snap = self.store.snapshots.load(flow_id)
        if snap is not None and snap.waiting is not None and snap.waiting.child_key == step_key:
            self.resume(flow_id, "child")

    # -- workers ---------------------------------------------------------------------------------
    def _wake(self, armed: int | None = None) -> int:
        return self.timers.wake(armed)

    def on_worker_ready(self) -> None:
        """Start this worker's sweeper (it sweeps at once: lost wake-ups are recovered)."""
        self.sweeper.start()

    def on_worker_shutdown(self, requeued: bool = True) -> None:
        """``requeued``: the broker took back what this worker had reserved (a clean exit)."""
        self.sweeper.stop(drop_claims=requeued)


def _waiting_schema(snap: FlowSnapshot, name: str) -> dict[str, Any] | None:
    waiting = snap.waiting
    if waiting is None or waiting.kind != "signal" or waiting.name != name:
        return None
    return waiting.schema_


def _model_from_schema(schema: dict[str, Any]) -> type[BaseModel]:
    """A permissive model checking the recorded schema's required fields and their JSON types."""
    from pydantic import create_model

    types = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields: dict[str, Any] = {}
    for field, spec in properties.items():
        kind = types.get(str(spec.get("type"))) if isinstance(spec, dict) else None
        annotation: Any = kind if kind is not None else Any
        fields[field] = (annotation, ...) if field in required else (annotation | None, None)
    title = str(schema.get("title") or "Signal")
    model: type[BaseModel] = create_model(title if title.isidentifier() else "Signal", **fields)
    return model
