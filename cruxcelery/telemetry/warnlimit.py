"""Warnings that never flood the log, nor hurt the host: at most one per kind every 30 s, to the
``cruxcelery.telemetry`` logger, with a count of those suppressed meanwhile."""

from __future__ import annotations

import contextlib
import logging
import time

__all__ = ["WarningLimiter"]

_log = logging.getLogger("cruxcelery.telemetry")

WARNING_INTERVAL_S = 30.0


class WarningLimiter:
    """At most one warning per key every ``interval_s``; counts what it suppressed."""

    PREFIX = "cruxcelery telemetry: "

    def __init__(self, interval_s: float = WARNING_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        with contextlib.suppress(Exception):  # logging must never hurt the host
            if suppressed:
                _log.warning(self.PREFIX + message + " (%d similar warnings suppressed)", *args, suppressed)
            else:
                _log.warning(self.PREFIX + message, *args)
