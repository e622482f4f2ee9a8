"""Telemetry delivery built from settings, and the runtime extension that runs it.

``cruxcelery.telemetry`` takes plain parameters and knows no settings; this module turns
``CruxSettings`` into its pieces:

- **where records go.** With a spool Redis (``CRUX_TELEMETRY_REDIS_URL``, else ``CRUX_REDIS_URL``,
  else the broker when it is Redis) and ``CRUX_SPOOL`` on (``auto``: when ``CRUX_DEVTOOLS_URL`` is
  set), a ``SpoolExporter`` appends each flush to the stream ``{prefix}:telemetry`` (one ``XADD``).
  Otherwise, with ``CRUX_DEVTOOLS_URL``, an ``HttpExporter`` (in-process queue, background sender,
  circuit breaker) delivers over HTTP.
- **who reads the spool.** ``TelemetryDelivery`` (a runtime extension) runs a ``Forwarder`` thread in
  every worker process that executes tasks: each prefork pool child (``worker_process_init``), the
  main process of a solo pool (the same signal) or of a threads/gevent/eventlet pool
  (``worker_ready``). It stops when the process shuts down, after delivering what is left (at most
  ``SHUTDOWN_DRAIN_S``, and not at all while devtools is known down: the spool keeps it).
  ``cruxcelery forward`` runs one on its own (``run_forwarder``).
- **redaction.** ``configure_redaction``: the default patterns plus ``CRUX_REDACT_PATTERNS``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import signals

from cruxcelery.core.extensions import Extension, Worker
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry import redaction
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client, standby_key

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

log = logging.getLogger("cruxcelery")

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
FORWARDER_SOCKET_TIMEOUT_S = 5.0
SHUTDOWN_DRAIN_S = 5.0
"""At most this long, a worker process shutting down delivers what is left in the spool (the rest
stays there for the next forwarder)."""
FORWARDER_LINGER_S = 0.25
"""After new entries arrive, a worker's forwarder waits this long for company: one request carries
the records of many actions, and the forwarder thread takes the GIL from the actions of its
process a few times a second rather than after every action."""


def spool_key(settings: CruxSettings) -> str:
    return f"{settings.key_prefix}:telemetry"


def telemetry_redis_url(settings: CruxSettings, broker_url: str | None) -> str | None:
    """``CRUX_TELEMETRY_REDIS_URL``, else ``CRUX_REDIS_URL``, else the broker URL when it is Redis."""
    if settings.telemetry_redis_url:
        return settings.telemetry_redis_url
    if settings.redis_url:
        return settings.redis_url
    broker = str(broker_url or "")
    return broker if broker.startswith(_REDIS_SCHEMES) else None


def spool_url(settings: CruxSettings, broker_url: str | None) -> str | None:
    """The Redis the spool lives in, or ``None`` when records do not go through a spool."""
    if not settings.telemetry_enabled or settings.spool == "off":
        return None
    if settings.spool == "auto" and not settings.devtools_url:
        return None
    return telemetry_redis_url(settings, broker_url)


def http_transport(settings: CruxSettings) -> HttpTransport | None:
    if not settings.devtools_url:
        return None
    token = settings.devtools_token.get_secret_value() if settings.devtools_token else None
    return HttpTransport(settings.devtools_url, token)


def http_exporter(settings: CruxSettings) -> HttpExporter | None:
    """An exporter to ``CRUX_DEVTOOLS_URL`` with its circuit breaker, or ``None`` without a URL."""
    transport = http_transport(settings)
    if transport is None:
        return None
    return HttpExporter(
        transport, max_queue_records=settings.queue_max_records, max_queue_bytes=settings.queue_max_bytes,
        breaker=CircuitBreaker(),
    )


def spool_exporter(settings: CruxSettings, url: str) -> SpoolExporter:
    return SpoolExporter(
        spool_client(url), spool_key(settings), max_entries=settings.spool_max_entries,
        max_buffer_records=settings.queue_max_records, max_buffer_bytes=settings.queue_max_bytes,
    )


def make_forwarder(settings: CruxSettings, url: str, transport: HttpTransport, *, in_worker: bool = True) -> Forwarder:
    """In a worker process: one request at a time, lingering for batches (it shares the GIL with
    the actions), standing by while devtools reads the spool itself; on its own
    (``cruxcelery forward``): two requests in flight, no lingering."""
    claim_idle_s = settings.forwarder_claim_idle_s
    return Forwarder(
        spool_client(url, socket_timeout_s=FORWARDER_SOCKET_TIMEOUT_S), spool_key(settings), transport,
        claim_idle_s=claim_idle_s, claim_interval_s=min(10.0, max(0.2, claim_idle_s / 2)),
        linger_s=FORWARDER_LINGER_S if in_worker else 0.0, concurrency=1 if in_worker else 2,
        standby_key=standby_key(spool_key(settings)) if in_worker else None,
    )


def configure_redaction(settings: CruxSettings) -> None:
    """The process-wide redactor: the default patterns and ``CRUX_REDACT_PATTERNS``."""
    redaction.configure(patterns=(*redaction.DEFAULT_PATTERNS, *settings.redact_patterns))


@dataclass(frozen=True)
class Delivery:
    """What ``build`` chose: the exporter it made (if any) and the spool's URL (if spooling)."""

    exporter: SpoolExporter | HttpExporter | None
    spool_url: str | None


def build(settings: CruxSettings, broker_url: str | None) -> Delivery:
    url = spool_url(settings, broker_url)
    if url is not None:
        return Delivery(spool_exporter(settings, url), url)
    return Delivery(http_exporter(settings) if settings.telemetry_enabled else None, None)


# -- the extension -----------------------------------------------------------------------------------


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
        _EXTENSIONS.add(self)
        _install_signals()

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

    def on_worker_ready(self, worker: Worker) -> None:
        if not _PROCESS.prefork_parent:  # threads, gevent, eventlet (solo: already started)
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


class _ProcessState:
    prefork_parent = False


_PROCESS = _ProcessState()
_EXTENSIONS: weakref.WeakSet[TelemetryDelivery] = weakref.WeakSet()
_installed: list[bool] = []
_install_lock = threading.Lock()


def _install_signals() -> None:
    with _install_lock:
        if _installed:
            return
        signals.worker_init.connect(_on_worker_init, weak=False)
        signals.worker_process_init.connect(_on_worker_process_init, weak=False)
        _installed.append(True)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    try:
        from celery.concurrency.prefork import TaskPool

        pool_cls = getattr(sender, "pool_cls", None)
        _PROCESS.prefork_parent = isinstance(pool_cls, type) and issubclass(pool_cls, TaskPool)
    except Exception:
        log.warning("cruxcelery: cannot tell the worker's pool", exc_info=True)


def _on_worker_process_init(sender: Any = None, **_: Any) -> None:
    """A prefork pool child after fork (or a solo pool's process): start its forwarders."""
    _PROCESS.prefork_parent = False
    for extension in list(_EXTENSIONS):
        try:
            extension.start_forwarder()
        except Exception:
            log.warning("cruxcelery: cannot start the telemetry forwarder", exc_info=True)


# -- ``cruxcelery forward`` --------------------------------------------------------------------------


def run_forwarder(settings: CruxSettings, url: str, *, stop: threading.Event | None = None) -> int:
    """Forward the spool at ``url`` to ``CRUX_DEVTOOLS_URL`` until SIGTERM or SIGINT (or ``stop``)."""
    transport = http_transport(settings)
    if transport is None:
        log.error("cruxcelery forward: no devtools URL (CRUX_DEVTOOLS_URL or --devtools)")
        return 2
    forwarder = make_forwarder(settings, url, transport, in_worker=False)
    done = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: done.set())
    print(f"cruxcelery forward: {_safe(url)} stream {spool_key(settings)} -> {settings.devtools_url} "
          f"(consumer {forwarder.consumer}, pid {os.getpid()})", flush=True)
    forwarder.start()
    try:
        while not done.wait(1.0):
            if not forwarder.running:
                forwarder.start()
    finally:
        forwarder.stop(5.0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stats = forwarder.stats
        print(f"cruxcelery forward: stopped; delivered {stats.delivered}, rejected {stats.rejected}, "
              f"entries acknowledged {stats.entries_acked}", flush=True)
    return 0


def _safe(url: str) -> str:
    """A URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
