"""``TelemetryDelivery``: the runtime extension that delivers telemetry in workers.

It runs a ``Forwarder`` thread (when there is a spool to forward) in every worker process that
executes tasks: each prefork pool child and a solo pool's process (``on_process_init``), the main
process of a threads/gevent/eventlet pool (``on_worker_ready``). It stops when the process shuts
down, after delivering what is left (at most ``SHUTDOWN_DRAIN_S``, and not at all while devtools
is known down: the spool keeps it). ``install`` adds the exporter and the extension to a runtime."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from cruxcelery.core.extensions import Extension, Worker
from cruxcelery.delivery.build import build, http_transport, make_forwarder
from cruxcelery.telemetry.spool.forwarder import Forwarder

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

SHUTDOWN_DRAIN_S = 5.0
"""At most this long, a worker process shutting down delivers what is left in the spool (the rest
stays there for the next forwarder)."""


def install(runtime: Runtime) -> TelemetryDelivery:
    """Build the runtime's delivery from its settings: the exporter its flushes go to, and the
    extension that forwards the spool in workers."""
    delivery = build(runtime.settings, runtime.app.conf.broker_url)
    if delivery.exporter is not None:
        runtime.add_exporter(delivery.exporter)
    extension = TelemetryDelivery(runtime, delivery.spool_url)
    runtime.add_extension(extension)
    return extension


class TelemetryDelivery(Extension):
    """Runs the process's forwarder (when there is a spool to forward) and flushes what is left when
    a worker or one of its pool processes shuts down (best effort: the guarantee is the flush at
    the end of every action)."""

    name = "telemetry"

    def __init__(self, runtime: Runtime, spool: str | None) -> None:
        self._runtime = weakref.ref(runtime)
        settings = runtime.settings
        self.spool_url = spool
        self.forwarding = bool(spool and settings.devtools_url and settings.forwarder != "off")
        self._forwarder: Forwarder | None = None
        self._lock = threading.Lock()

    @property
    def forwarder(self) -> Forwarder | None:
        return self._forwarder

    def start_forwarder(self) -> Forwarder | None:
        """Start this process's forwarder (idempotent; a no-op without a spool or a devtools URL)."""
        runtime = self._runtime()
        if not self.forwarding or runtime is None or self.spool_url is None:
            return None
        with self._lock:
            forwarder = self._forwarder
            if forwarder is None:
                transport = http_transport(runtime.settings)
                if transport is None:
                    return None
                forwarder = self._forwarder = make_forwarder(runtime.settings, self.spool_url, transport)
            forwarder.start()
            return forwarder

    def on_process_init(self, worker: Worker) -> None:
        self.start_forwarder()

    def on_worker_ready(self, worker: Worker) -> None:
        if worker.executes:  # threads, gevent, eventlet (solo: already started)
            self.start_forwarder()

    def on_worker_shutdown(self, worker: Worker) -> None:
        runtime = self._runtime()
        if runtime is None:
            return
        runtime.shutdown()
        forwarder = self._forwarder
        if forwarder is None or not forwarder.running:
            return
        forwarder.stop(1.0)
        if not forwarder.breaker.is_open:  # deliver what is left, unless devtools is known down
            forwarder.drain(SHUTDOWN_DRAIN_S)
            forwarder.stop(0.0)
