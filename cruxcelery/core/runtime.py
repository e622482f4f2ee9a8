"""``Runtime``: binds one Celery app; owns settings, the envelope codec, the recorder (and its
exporters), the extensions, the ``ctx.crux`` helpers and the signal hooks. Nothing happens before
it is constructed. It knows no plug-in: flows, delivery and agents come through the extension seam
(``cruxcelery.core.extensions``), registered by the composition root ``cruxcelery.crux``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery
from pydantic import BaseModel

from cruxcelery.core import flushing, helpers, hooks, registry
from cruxcelery.core.actions import CruxTask, make_action
from cruxcelery.core.context import ActionContext
from cruxcelery.core.envelope import EnvelopeCodec
from cruxcelery.core.extensions import DeferredPublisher, Extension, Extensions
from cruxcelery.errors import ConfigurationError
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry import redaction
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.sinks import JsonlFileSink

__all__ = ["Runtime", "configure_redaction", "refuse_pickle"]

log = logging.getLogger("cruxcelery")

E = TypeVar("E", bound=Extension)
_PICKLE_MARKERS = ("pickle", "x-python-serialize")
_SERIALIZER_KEYS = ("accept_content", "result_accept_content", "task_serializer", "result_serializer",
                    "event_serializer")


class Runtime:
    """The cruxcelery runtime for one Celery app (``cruxcelery.Crux`` adds flows to it)."""

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
        configure_redaction(self.settings)
        self.extensions = Extensions()
        self.helpers: helpers.CruxHelpers = helpers.compose(())
        registry.register(self)
        hooks.install()

    # -- registry (cruxcelery.core.registry) ----------------------------------------------------
    @classmethod
    def current(cls) -> Runtime | None:
        """The most recently created runtime of this process that is still alive."""
        return registry.current()

    @classmethod
    def for_app(cls, app: Any) -> Runtime | None:
        return registry.for_app(app)

    @classmethod
    def instances(cls) -> list[Runtime]:
        return registry.instances()

    def make_current(self) -> None:
        """Make this the runtime that ``current()`` returns (module-level functions such as
        ``signal_flow`` and ``with_context`` use it). By default the most recently created one is."""
        registry.make_current(self)

    def close(self) -> None:
        """Forget this runtime: it is no longer ``current()`` and its app no longer has one
        (for tests and short-lived scripts that build several)."""
        registry.forget(self)

    # -- extensions ------------------------------------------------------------------------------
    def add_extension(self, extension: Extension) -> None:
        """Register a lifecycle extension (see ``cruxcelery.core.extensions``); its ``ctx.crux``
        helpers, if any, join the others."""
        self.extensions.add(extension)
        if extension.helpers is not None:
            self.helpers = helpers.compose(self.extensions.helper_classes())

    @property
    def deferred(self) -> DeferredPublisher | None:
        """What publishes delays longer than one countdown hop (an extension's: the flow timers)."""
        return self.extensions.deferred_publisher()

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


def configure_redaction(settings: CruxSettings) -> None:
    """The process-wide redactor: the default patterns and ``CRUX_REDACT_PATTERNS``."""
    redaction.configure(patterns=(*redaction.DEFAULT_PATTERNS, *settings.redact_patterns))


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
