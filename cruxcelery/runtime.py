"""``Crux(app)``: binds one Celery app; owns settings, the envelope codec, the recorder (and its
exporters) and the signal hooks. Nothing happens before it is constructed."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from celery import Celery
from pydantic import BaseModel

from cruxcelery import flushing, hooks, scheduling
from cruxcelery.actions import ActionContext, CruxTask, make_action
from cruxcelery.envelope import Envelope, EnvelopeCodec
from cruxcelery.errors import ConfigurationError
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.delivery import HttpExporter
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.sinks import JsonlFileSink

if TYPE_CHECKING:
    from cruxcelery.flows.handle import FlowHandle
    from cruxcelery.flows.manager import FlowRuntime

log = logging.getLogger("cruxcelery")

CompletionListener = Callable[[Envelope, "str | None", Any, "BaseException | None"], None]
_PICKLE_MARKERS = ("pickle", "x-python-serialize")


class Crux:
    """The cruxcelery runtime for one Celery app."""

    _instances: ClassVar[weakref.WeakSet[Crux]] = weakref.WeakSet()
    _latest: ClassVar[weakref.ReferenceType[Crux] | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, app: Celery, settings: CruxSettings | None = None) -> None:
        refuse_pickle(app)
        self.app = app
        self.settings = settings if settings is not None else CruxSettings.from_env()
        key = self.settings.signing_key
        self.codec = EnvelopeCodec(
            self.settings.envelope_max_bytes, key.get_secret_value().encode("utf-8") if key else None
        )
        self.recorder = Recorder(enabled=self.settings.telemetry_enabled)
        if self.settings.records_file:
            self.recorder.add_exporter(JsonlFileSink(self.settings.records_file))
        http = HttpExporter.from_settings(self.settings) if self.settings.telemetry_enabled else None
        if http is not None:
            self.recorder.add_exporter(http)
        self._completion_listeners: list[CompletionListener] = []
        self._flows: FlowRuntime | None = None
        app._cruxcelery = self  # type: ignore[attr-defined]
        with Crux._lock:
            Crux._instances.add(self)
            Crux._latest = weakref.ref(self)
        hooks.install()
        scheduling.install(self)

    # -- registry ------------------------------------------------------------------------------
    @classmethod
    def current(cls) -> Crux | None:
        """The most recently created runtime in this process."""
        ref = cls._latest
        return ref() if ref is not None else None

    @classmethod
    def for_app(cls, app: Any) -> Crux | None:
        runtime = getattr(app, "_cruxcelery", None)
        return runtime if isinstance(runtime, Crux) else None

    @classmethod
    def instances(cls) -> list[Crux]:
        return list(cls._instances)

    # -- actions ---------------------------------------------------------------------------------
    def action(
        self, fn: Callable[[ActionContext, Any], Any] | None = None, *, name: str | None = None,
        observability_name: str | None = None, root_primitive: str | None = None,
        attributes: dict[str, Any] | None = None, args: type[BaseModel] | None = None,
        **task_options: Any,
    ) -> Any:
        """Decorate ``fn(ctx, args)`` into a Celery task that acts as a Crux action."""

        def decorate(func: Callable[[ActionContext, Any], Any]) -> CruxTask:
            return make_action(
                self, func, name=name, observability_name=observability_name,
                root_primitive=root_primitive, attributes=attributes, args=args,
                task_options=task_options,
            )

        return decorate(fn) if fn is not None else decorate

    # -- flows (they plug into the runtime; imported on first use) -----------------------------
    @property
    def flows(self) -> FlowRuntime:
        if self._flows is None:
            from cruxcelery.flows.manager import FlowRuntime

            self._flows = FlowRuntime(self)
        return self._flows

    def flow(self, name: str, *, args: type[BaseModel],
             signals: dict[str, type[BaseModel]] | None = None) -> FlowHandle[Any]:
        """Define a durable flow; decorate its body with ``@handle.handler``."""
        return self.flows.flow(name, args, signals)

    # -- telemetry -------------------------------------------------------------------------------
    def add_exporter(self, exporter: RecordExporter) -> None:
        self.recorder.add_exporter(exporter)

    def remove_exporter(self, exporter: RecordExporter) -> None:
        self.recorder.remove_exporter(exporter)

    def flush(self, timeout_s: float | None = None) -> FlushResult:
        """Deliver pending records, bounded by ``timeout_s`` (default ``CRUX_FLUSH_TIMEOUT_S``) and
        by what the running action's flush budget has left. Never raises."""
        bound = flushing.bounded(self.settings.flush_timeout_s if timeout_s is None else timeout_s)
        started = time.monotonic()
        try:
            return self.recorder.flush(bound)
        except Exception:
            log.warning("cruxcelery: flush failed", exc_info=True)
            return FlushResult(status="failed")
        finally:
            flushing.spent(time.monotonic() - started)

    def shutdown(self, timeout_s: float | None = None) -> FlushResult:
        """Flush, then stop the exporters (worker shutdown). Never raises."""
        try:
            return self.recorder.shutdown(self.settings.flush_timeout_s if timeout_s is None else timeout_s)
        except Exception:
            log.warning("cruxcelery: telemetry shutdown failed", exc_info=True)
            return FlushResult(status="failed")

    def source_health(self) -> dict[str, Any]:
        """Delivery counters of every exporter that keeps them (the design's ``sourceHealth``)."""
        health: dict[str, Any] = {"emitted": self.recorder.emitted}
        for exporter in self.recorder.exporters:
            counters = getattr(exporter, "source_health", None)
            if callable(counters):
                health[type(exporter).__name__] = counters()
        return health

    # -- completions (flows plug in here; the runtime never imports flows) -----------------------
    def add_completion_listener(self, listener: CompletionListener) -> None:
        self._completion_listeners.append(listener)

    def notify_completion(self, envelope: Envelope, task_id: str | None, result: Any,
                          error: BaseException | None) -> None:
        for listener in list(self._completion_listeners):
            try:
                listener(envelope, task_id, result, error)
            except Exception:
                log.warning("cruxcelery: completion listener failed", exc_info=True)


def refuse_pickle(app: Celery) -> None:
    """cruxcelery is JSON-only: an app that accepts or produces pickle is refused."""
    conf = app.conf
    offending: list[str] = []
    for key in ("accept_content", "result_accept_content"):
        values = conf.get(key) or []
        if any(marker in str(v).lower() for v in values for marker in _PICKLE_MARKERS):
            offending.append(f"{key}={list(values)!r}")
    for key in ("task_serializer", "result_serializer", "event_serializer"):
        value = str(conf.get(key) or "").lower()
        if any(marker in value for marker in _PICKLE_MARKERS):
            offending.append(f"{key}={value!r}")
    if offending:
        raise ConfigurationError(
            "cruxcelery is JSON-only and refuses an app that accepts pickle: " + ", ".join(offending)
            + ". Use accept_content=['json'] and the json serializers."
        )
