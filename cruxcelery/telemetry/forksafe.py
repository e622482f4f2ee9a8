"""One process-wide after-fork hook for the objects that hold threads, locks or sockets: each
registered object's ``after_fork()`` runs in a forked child (a prefork pool process) so it starts
with fresh state instead of the parent's."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def after_fork(self) -> None: ...


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_installed: list[bool] = []
_lock = threading.Lock()


def track(obj: ForkAware) -> None:
    """Remember ``obj`` (weakly); install the after-fork hook once per process."""
    with _lock:
        _objects.add(obj)
        if not _installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _installed.append(True)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        with contextlib.suppress(Exception):  # an at-fork hook must never raise
            obj.after_fork()
