"""Which runtimes live in this process: the most recent one is ``current()`` (module-level
functions such as ``signal_flow`` and ``with_context`` use it), and each Celery app knows its own.
Every module that needs "the runtime" asks here, so nothing imports the runtime to find it."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

APP_ATTRIBUTE = "_cruxcelery"
_lock = threading.Lock()
_created: list[weakref.ReferenceType[Runtime]] = []  # in creation order, the current one last


def register(runtime: Runtime) -> None:
    """Make ``runtime`` the current one, and its app's."""
    global _created
    with _lock:
        _created = [*(ref for ref in _created if ref() not in (None, runtime)), weakref.ref(runtime)]
    setattr(runtime.app, APP_ATTRIBUTE, runtime)


def forget(runtime: Runtime) -> None:
    """``runtime`` is no longer current, nor its app's."""
    global _created
    with _lock:
        _created = [ref for ref in _created if ref() not in (None, runtime)]
    if getattr(runtime.app, APP_ATTRIBUTE, None) is runtime:
        delattr(runtime.app, APP_ATTRIBUTE)


def make_current(runtime: Runtime) -> None:
    """Make ``runtime`` the one ``current()`` returns, without changing its app's."""
    global _created
    with _lock:
        _created = [*(ref for ref in _created if ref() not in (None, runtime)), weakref.ref(runtime)]


def current() -> Runtime | None:
    """The most recently created (or made current) runtime of this process that is still alive."""
    for ref in reversed(_created):
        runtime = ref()
        if runtime is not None:
            return runtime
    return None


def for_app(app: Any) -> Runtime | None:
    """The runtime built for ``app``, if any."""
    return getattr(app, APP_ATTRIBUTE, None) if app is not None else None


def instances() -> list[Runtime]:
    """Every live runtime, oldest first."""
    return [runtime for ref in _created if (runtime := ref()) is not None]
