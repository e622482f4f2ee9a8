"""``FlowRuntime``: the flows of one ``Crux``: their handles, the Redis store, resumes, signals,
child-task completions and timers."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import redis
from celery import signals as celery_signals
from pydantic import BaseModel, ValidationError

from cruxcelery.envelope import Envelope
from cruxcelery.errors import ConfigurationError
from cruxcelery.flows.errors import FlowNotFound, FlowNotWaiting, SignalRejected
from cruxcelery.flows.handle import FlowHandle
from cruxcelery.flows.keys import FlowKeys, validate_flow_id, validate_flow_name, validate_signal_name
from cruxcelery.flows.snapshot import TERMINAL_STATUSES, FlowStatus, FlowSummary
from cruxcelery.flows.store import RedisFlowStore
from cruxcelery.flows.timing import WAKE_TASK, Timers
from cruxcelery.publishing import quiet
from cruxcelery.telemetry import evidence
from cruxcelery.telemetry.preview import json_safe

if TYPE_CHECKING:
    from cruxcelery.runtime import Crux

log = logging.getLogger("cruxcelery.flows")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class FlowRuntime:
    def __init__(self, crux: Crux) -> None:
        self.crux = crux
        self.handles: dict[str, FlowHandle[Any]] = {}
        self.timers = Timers(self)
        self._store: RedisFlowStore | None = None
        self._lock = threading.Lock()
        crux.add_completion_listener(self.on_child_done)
        app: Any = crux.app
        app.task(name=WAKE_TASK, acks_late=True, ignore_result=True, shared=False)(self._wake)
        celery_signals.worker_ready.connect(self._on_worker_ready, weak=False)

    def redis_url(self) -> str:
        if self.crux.settings.redis_url:
            return self.crux.settings.redis_url
        broker = str(self.crux.app.conf.broker_url or "")
        return broker if broker.startswith(("redis://", "rediss://", "unix://")) else DEFAULT_REDIS_URL

    @property
    def store(self) -> RedisFlowStore:
        """Connects lazily: nothing talks to Redis before a flow is used."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    client = redis.Redis.from_url(self.redis_url())
                    self._store = RedisFlowStore(client, FlowKeys(self.crux.settings.key_prefix))
        return self._store

    def flow(self, name: str, args: type[BaseModel], signals: dict[str, type[BaseModel]] | None) -> FlowHandle[Any]:
        validate_flow_name(name)
        if name in self.handles:
            raise ConfigurationError(f"a flow named {name!r} is already defined")
        handle: FlowHandle[Any] = FlowHandle(self, name, args, signals)
        self.handles[name] = handle
        return handle

    # -- resumes ---------------------------------------------------------------------------------
    def resume(self, flow_id: str, reason: str, name: str | None = None) -> None:
        """Publish the flow's task now; its execution decides whether there is work."""
        if name is None:
            snap = self.store.load(flow_id)
            if snap is None:
                return
            name = snap.name
        with quiet():
            self.crux.app.send_task(f"crux.flow.{name}", kwargs={"flow_id": flow_id, "reason": reason})

    def signal(self, flow_id: str, name: str, payload: Any = None) -> None:
        validate_flow_id(flow_id)
        validate_signal_name(name)
        head = self.store.head(flow_id)
        if head is None:
            raise FlowNotFound(flow_id)
        flow_name, status = head
        if status in TERMINAL_STATUSES:
            raise FlowNotWaiting(f"flow {flow_id} is {status}; it takes no more signals")
        handle = self.handles.get(flow_name)
        if handle is not None and handle.signals:
            if name not in handle.signals:
                raise SignalRejected(f"flow {flow_name!r} declares no signal {name!r} "
                                     f"(it has {sorted(handle.signals)})")
            try:
                payload = handle.signals[name].model_validate(payload).model_dump(mode="json")
            except ValidationError as exc:
                raise SignalRejected(f"signal {name!r} for flow {flow_id}: {exc}") from None
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise SignalRejected(f"signal {name!r} payload is not JSON: {exc}") from None
        self.store.push_signal(flow_id, name, payload)
        self.resume(flow_id, "signal", flow_name)

    def cancel(self, flow_id: str, reason: str | None = None) -> FlowSummary:
        """Cancel a flow (a no-op on a finished one); a pending resume then finds it cancelled."""
        return self.store.cancel(validate_flow_id(flow_id), reason).summary()

    def list_flows(self, status: FlowStatus | None = None, name: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[FlowSummary], str | None]:
        return self.store.list_flows(status=status, name=name, limit=limit, cursor=cursor)

    # -- wiring ----------------------------------------------------------------------------------
    def on_child_done(self, envelope: Envelope, task_id: str | None, result: Any,
                      error: BaseException | None) -> None:
        """A durable step's child finished (in whichever worker ran it): store its outcome once
        and resume the flow."""
        if envelope.flow_id is None or envelope.flow_step is None:
            return
        outcome = {"ok": error is None, "output": json_safe(result), "taskId": task_id,
                   "error": evidence.summary(error) if error is not None else None}
        if self.store.put_child_result(envelope.flow_id, envelope.flow_step, outcome):
            self.resume(envelope.flow_id, "child")

    def _wake(self, armed: int | None = None) -> int:
        return self.timers.wake(armed)

    def _on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        """Recover lost wake-ups: sweep what is due and re-arm the next wake-up."""
        if getattr(sender, "app", self.crux.app) is not self.crux.app:
            return
        try:
            self.timers.sweep(force_next=True)
        except Exception:
            log.warning("cruxcelery: the timer sweep at worker start failed", exc_info=True)
