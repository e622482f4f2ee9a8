"""``cruxcelery forward``: a forwarder on its own, delivering the spool to devtools until stopped."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from cruxcelery.delivery.build import http_transport, make_forwarder, spool_key
from cruxcelery.settings import CruxSettings

log = logging.getLogger("cruxcelery")


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
