"""The execution lease of a running flow, renewed by one thread per process (not one per
execution) every third of its life. Re-created after ``fork``."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("cruxcelery.flows")


class HeldLease:
    def __init__(self, flow_id: str, token: str, renew: Callable[[str, str], bool]) -> None:
        self.flow_id = flow_id
        self.token = token
        self.lost = False
        self._renew = renew

    def renew(self) -> None:
        try:
            if not self._renew(self.flow_id, self.token):
                self.lost = True
        except Exception:
            log.warning("cruxcelery: could not renew the lease of flow %s", self.flow_id, exc_info=True)


class _Renewer:
    """Renews every held lease when a third of its life has passed since its last renewal. New
    holds only wake the thread to recompute its next deadline: however often executions start,
    no lease waits longer than a third of its life (holds never postpone renewals)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, tuple[HeldLease, float, float]] = {}  # id -> (lease, ttl, next renewal)
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, lease: HeldLease, ttl_s: float) -> None:
        with self._lock:
            self._held[id(lease)] = (lease, ttl_s, time.monotonic() + ttl_s / 3)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crux-lease-renewer", daemon=True)
                self._thread.start()
        self._changed.set()

    def release(self, lease: HeldLease) -> None:
        with self._lock:
            self._held.pop(id(lease), None)

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                due = [(key, lease, ttl) for key, (lease, ttl, at) in self._held.items() if at <= now]
                for key, lease, ttl in due:
                    self._held[key] = (lease, ttl, now + ttl / 3)
                upcoming = min((at for _, _, at in self._held.values()), default=now + 30.0)
            for _, lease, _ in due:
                lease.renew()
            self._changed.wait(max(upcoming - time.monotonic(), 0.0))
            self._changed.clear()


renewer = _Renewer()
