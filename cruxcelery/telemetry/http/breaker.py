"""A circuit breaker for the HTTP path to devtools: stop waiting on a server known to be down.

- **closed** (healthy): every send is allowed; callers may wait for delivery.
- **open**: a send failed at the server level (connection refused, timeout, HTTP 408/409/425/429/5xx).
  Callers must not wait on HTTP (``is_open``): a flush returns at once and records stay queued or
  spooled. One *probe* is allowed per probe interval (``allow``), which grows with consecutive
  failures (``probe_base_s * 2**n``, capped at ``probe_cap_s``, +-20 % jitter) and is never earlier
  than a server's ``Retry-After``.
- A probe (or any send) that reaches the server and is answered closes the breaker again.

Probes are made by the background sender or forwarder, never by a caller waiting on a flush. Thread-safe;
fork-aware (the state is kept, the lock is re-created in a child). Clock and random source injectable.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BreakerStats", "CircuitBreaker"]

PROBE_BASE_S = 0.25
PROBE_CAP_S = 5.0
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """Cumulative counters. ``short_circuited``: callers turned away while open."""

    state: str
    failures: int
    opened: int
    probes: int
    short_circuited: int
    last_error: str | None


class CircuitBreaker:
    """Closed or open; one probe at a time while open."""

    def __init__(
        self,
        *,
        probe_base_s: float = PROBE_BASE_S,
        probe_cap_s: float = PROBE_CAP_S,
        clock: Callable[[], float] = time.monotonic,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        self.probe_base_s = probe_base_s
        self.probe_cap_s = probe_cap_s
        self._clock = clock
        self._random = random_source
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._open = False
        self._failures = 0  # consecutive
        self._probe_at = 0.0
        self._probing = False
        self._opened = 0
        self._probes = 0
        self._short_circuited = 0
        self._last_error: str | None = None

    # -- state ---------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while the server is known to be down: do not wait on it. Lock-free."""
        return self._open

    def is_open_now(self) -> bool:
        """``is_open``, counting the caller as turned away when it is."""
        if not self._open:
            return False
        self._short_circuited += 1  # a lost increment under a race is harmless
        return True

    def probe_at(self) -> float:
        """When the next probe may start (on the breaker's clock); 0.0 when closed."""
        return self._probe_at if self._open else 0.0

    # -- transitions ---------------------------------------------------------------------------------

    def allow(self) -> bool:
        """May a send start now? Always when closed; when open, once per probe interval (that send
        is the probe: report its outcome with ``success`` or ``failure``)."""
        if not self._open:
            return True
        with self._locked():
            if not self._open:
                return True
            if self._probing or self._clock() < self._probe_at:
                return False
            self._probing = True
            self._probes += 1
            return True

    def success(self) -> None:
        """A send reached the server and was answered: close."""
        if not self._open and not self._failures:
            return
        with self._locked():
            self._open = False
            self._probing = False
            self._failures = 0
            self._probe_at = 0.0

    def failure(self, error: str | None = None, not_before: float | None = None) -> None:
        """A send failed at the server level: open (again) and schedule the next probe
        (``not_before``: a ``Retry-After``, on the breaker's clock)."""
        with self._locked():
            if not self._open:
                self._opened += 1
            self._open = True
            self._probing = False
            delay = min(self.probe_cap_s, self.probe_base_s * (2.0 ** min(self._failures, 30)))
            delay *= 1.0 + JITTER * (2.0 * self._random() - 1.0)
            self._failures += 1
            at = self._clock() + delay
            self._probe_at = max(at, not_before) if not_before is not None else at
            if error is not None:
                self._last_error = error

    def release_probe(self) -> None:
        """The probe allowed by ``allow`` was not made after all (nothing to send)."""
        with self._locked():
            self._probing = False

    def stats(self) -> BreakerStats:
        return BreakerStats(
            state="open" if self._open else "closed",
            failures=self._failures,
            opened=self._opened,
            probes=self._probes,
            short_circuited=self._short_circuited,
            last_error=self._last_error,
        )

    def _locked(self) -> threading.Lock:
        if self._pid != os.getpid():  # a forked child: the parent's lock may be held forever
            self._lock = threading.Lock()
            self._pid = os.getpid()
            self._probing = False
        return self._lock
