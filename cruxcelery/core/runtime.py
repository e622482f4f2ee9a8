"""``Runtime``: binds one Celery app; owns settings, the envelope codec, the recorder (and its
exporters), the extensions and the signal hooks. Nothing happens before it is constructed. It
knows nothing of flows: they plug in through the extension seam (``cruxcelery.core.extensions``)."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from celery import Celery
from pydantic import BaseModel

from cruxcelery.core import flushing, hooks
from cruxcelery.core.actions import ActionContext, CruxTask, make_action
from cruxcelery.core.envelope import EnvelopeCodec
from cruxcelery.core.extensions import Extension, Extensions
from cruxcelery.core.scheduling import DeferredPublisher
from cruxcelery.delivery import extension as telemetry_setup
from cruxcelery.delivery.extension import TelemetryDelivery
from cruxcelery.errors import ConfigurationError
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.sinks import JsonlFileSink

__all__ = ["Runtime", "TelemetryDelivery", "refuse_pickle"]

log = logging.getLogger("cruxcelery")

E = TypeVar("E", bound=Extension)
_PICKLE_MARKERS = ("pickle", "x-python-serialize")
_SERIALIZER_KEYS = ("accept_content", "result_accept_content", "task_serializer", "result_serializer",
                    "event_serializer")


class Runtime:
    """The cruxcelery runtime for one Celery app (``cruxcelery.Crux`` adds flows to it)."""

    _created: ClassVar[list[weakref.ReferenceType[Runtime]]] = []  # in creation order
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, app: Celery, settings: CruxSettings | None = None) -> None:
        refuse_pickle(app)
        self._json_only_checked: tuple[Any, ...] | None = None
        self.app = app
        self.settings = settings if settings is not None else CruxSettings.from_env()
        key = self.settings.signing_key
        self.codec = EnvelopeCodec(
            self.settings.envelope_max_bytes, key.get_secret_value().encode("utf-8") if key else None
        )
        self.recorder = Recorder(enabled=self.settings.telemetry_enabled)
        if self.settings.records_file:
            self.recorder.add_exporter(JsonlFileSink(self.settings.records_file))
        telemetry_setup.configure_redaction(self.settings)
        delivery = telemetry_setup.build(self.settings, app.conf.broker_url)
        if delivery.exporter is not None:
            self.recorder.add_exporter(delivery.exporter)
        self.extensions = Extensions()
        self.extensions.add(TelemetryDelivery(self, delivery.spool_url))
        # delays longer than one countdown hop go through this (the flow timers, when present)
        self.deferred: DeferredPublisher | None = None
        app._cruxcelery = self  # type: ignore[attr-defined]
        with Runtime._lock:
            Runtime._created = [*(ref for ref in Runtime._created if ref() is not None), weakref.ref(self)]
        hooks.install()

    # -- registry ------------------------------------------------------------------------------
    @classmethod
    def current(cls) -> Runtime | None:
        """The most recently created runtime of this process that is still alive."""
        for ref in reversed(Runtime._created):
            runtime = ref()
            if runtime is not None:
                return runtime
        return None

    @classmethod
    def for_app(cls, app: Any) -> Runtime | None:
        runtime = getattr(app, "_cruxcelery", None)
        return runtime if isinstance(runtime, Runtime) else None

    @classmethod
    def instances(cls) -> list[Runtime]:
        return [runtime for ref in Runtime._created if (runtime := ref()) is not None]

    def make_current(self) -> None:
        """Make this the runtime that ``current()`` returns (module-level functions such as
        ``signal_flow`` and ``with_context`` use it). By default the most recently created one is."""
        with Runtime._lock:
            Runtime._created = [*(ref for ref in Runtime._created if ref() not in (None, self)), weakref.ref(self)]

    def close(self) -> None:
        """Forget this runtime: it is no longer ``current()`` and its app no longer has one
        (for tests and short-lived scripts that build several)."""
        with Runtime._lock:
            Runtime._created = [ref for ref in Runtime._created if ref() not in (None, self)]
        if getattr(self.app, "_cruxcelery", None) is self:
            del self.app._cruxcelery

    # -- extensions ------------------------------------------------------------------------------
    def add_extension(self, extension: Extension) -> None:
        """Register a lifecycle extension (see ``cruxcelery.core.extensions``)."""
        self.extensions.add(extension)

    def extension(self, kind: type[E]) -> E | None:
        return self.extensions.find(kind)

    def check_json_only(self) -> None:
        """Raise ``ConfigurationError`` if the app was switched to pickle after ``Crux(app)``
        (checked again only when one of the serializer settings changed)."""
        conf = self.app.conf
        seen = tuple(_frozen(conf.get(key)) for key in _SERIALIZER_KEYS)
        if seen != self._json_only_checked:
            refuse_pickle(self.app)
            self._json_only_checked = seen

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


def _frozen(value: Any) -> Any:
    """A setting's value as it is now (a list changed in place later compares unequal)."""
    return tuple(str(v) for v in value) if isinstance(value, list | tuple | set | frozenset) else value


def refuse_pickle(app: Celery) -> None:
    """cruxcelery is JSON-only: an app that accepts or produces pickle is refused."""
    conf = app.conf
    offending: list[str] = []
    for key in _SERIALIZER_KEYS[:2]:
        values = conf.get(key) or []
        if any(marker in str(v).lower() for v in values for marker in _PICKLE_MARKERS):
            offending.append(f"{key}={list(values)!r}")
    for key in _SERIALIZER_KEYS[2:]:
        value = str(conf.get(key) or "").lower()
        if any(marker in value for marker in _PICKLE_MARKERS):
            offending.append(f"{key}={value!r}")
    if offending:
        raise ConfigurationError(
            "cruxcelery is JSON-only and refuses an app that accepts pickle: " + ", ".join(offending)
            + ". Use accept_content=['json'] and the json serializers."
        )
