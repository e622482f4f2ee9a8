"""Telemetry delivery built from settings.

``cruxcelery.telemetry`` takes plain parameters and knows no settings; this module turns
``CruxSettings`` into its pieces:

- **where records go.** With a spool Redis (``CRUX_TELEMETRY_REDIS_URL``, else ``CRUX_REDIS_URL``,
  else the broker when it is Redis) and ``CRUX_SPOOL`` on (``auto``: when ``CRUX_DEVTOOLS_URL`` is
  set), a ``SpoolExporter`` appends each flush to the stream ``{prefix}:telemetry`` (one ``XADD``).
  Otherwise, with ``CRUX_DEVTOOLS_URL``, an ``HttpExporter`` (in-process queue, background sender,
  circuit breaker) delivers over HTTP.
- **who reads the spool**: ``make_forwarder`` builds the ``Forwarder`` a worker process runs
  (``cruxcelery.delivery.extension``) or ``cruxcelery forward`` runs on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.redis_urls import SERVER_SCHEMES
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client, standby_key

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
    return broker if broker.startswith(SERVER_SCHEMES) else None


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
