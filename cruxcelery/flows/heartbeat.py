"""A thread that calls one function at a fixed interval until stopped, whatever else the process
does: the sweeper's heartbeat (a worker is alive while its process is, however long a sweep
takes) and the renewal of the sweeper lock while this worker sweeps."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cruxcelery.flows.guard import INFRASTRUCTURE_ERRORS

log = logging.getLogger("cruxcelery.flows")


class Heartbeat:
    def __init__(self, beat: Callable[[], None], interval_s: float, name: str = "crux-heartbeat") -> None:
        self._beat = beat
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat now, then every ``interval_s``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat()
            except INFRASTRUCTURE_ERRORS:
                log.warning("cruxcelery: the heartbeat could not reach Redis; retrying",
                            exc_info=log.isEnabledFor(logging.DEBUG))
            except Exception:
                log.warning("cruxcelery: a heartbeat failed; retrying", exc_info=True)
            self._stop.wait(self._interval_s)
