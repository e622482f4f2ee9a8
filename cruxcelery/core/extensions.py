"""The runtime's extension seam: a small lifecycle protocol and its guarded dispatch.

``Crux(app)`` holds an ordered list of extensions (flows, the sweeper and telemetry delivery are
registered when it is built, so every worker of the app behaves the same whatever modules it
imported). Each hook is dispatched to every extension in order; a failing extension is logged and
never raised into Celery (dramatiq's ``emit_after`` habit).

| hook | when | where |
| --- | --- | --- |
| ``on_publish(message)`` | a task of the app is about to be published | the publishing process |
| ``on_received(execution)`` | a worker reserved a message of the app (``task_received``) | the worker's main process |
| ``on_execution_open(execution)`` | a task of the app starts executing (``task_prerun``) | the process running it |
| ``on_execution_close(execution, outcome)`` | it ended, with its classified ``Outcome`` | the same |
| ``on_worker_ready(worker)`` | a worker's consumer is ready | the worker's main process |
| ``on_worker_shutdown(worker)`` | a worker or one of its pool processes shuts down | that process |
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, TypeVar

from cruxcelery.core.envelope import Envelope
from cruxcelery.core.outcomes import Outcome

log = logging.getLogger("cruxcelery.core.extensions")
E = TypeVar("E", bound="Extension")


@dataclass(frozen=True, slots=True)
class Message:
    """A task message being published: its headers may still be changed by ``on_publish``."""

    task_name: str
    task_id: str | None
    headers: dict[str, Any]
    envelope: Envelope | None


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a task of the app."""

    task: Any
    task_id: str | None
    task_name: str
    request: Any
    envelope: Envelope | None


@dataclass(frozen=True, slots=True)
class Worker:
    """The worker (or pool process) a lifecycle hook fires in. ``main`` is the worker's parent.
    ``clean`` is false when the worker exits after an unrecoverable error (exit code not 0): the
    broker may not have taken back the messages it had reserved."""

    app: Any
    hostname: str
    main: bool
    clean: bool = True


class Extension:
    """Subclass and override the hooks you need; every hook defaults to doing nothing."""

    name = "extension"

    def on_publish(self, message: Message) -> None:
        return None

    def on_received(self, execution: Execution) -> None:
        return None

    def on_execution_open(self, execution: Execution) -> None:
        return None

    def on_execution_close(self, execution: Execution, outcome: Outcome) -> None:
        return None

    def on_worker_ready(self, worker: Worker) -> None:
        return None

    def on_worker_shutdown(self, worker: Worker) -> None:
        return None


class Extensions:
    """The ordered extensions of one runtime and their guarded dispatch."""

    def __init__(self) -> None:
        self._items: tuple[Extension, ...] = ()
        self._lock = threading.Lock()

    def add(self, extension: Extension) -> None:
        with self._lock:
            self._items = (*self._items, extension)

    def remove(self, extension: Extension) -> None:
        with self._lock:
            self._items = tuple(e for e in self._items if e is not extension)

    def find(self, kind: type[E]) -> E | None:
        """The first registered extension of ``kind``."""
        return next((e for e in self._items if isinstance(e, kind)), None)

    def __iter__(self) -> Any:
        return iter(self._items)

    def publish(self, message: Message) -> None:
        self._dispatch("on_publish", message)

    def received(self, execution: Execution) -> None:
        self._dispatch("on_received", execution)

    def execution_open(self, execution: Execution) -> None:
        self._dispatch("on_execution_open", execution)

    def execution_close(self, execution: Execution, outcome: Outcome) -> None:
        self._dispatch("on_execution_close", execution, outcome)

    def worker_ready(self, worker: Worker) -> None:
        self._dispatch("on_worker_ready", worker)

    def worker_shutdown(self, worker: Worker) -> None:
        # in reverse, like middleware unwinding: the last registered stops first
        self._dispatch("on_worker_shutdown", worker, reverse=True)

    def _dispatch(self, hook: str, *args: Any, reverse: bool = False) -> None:
        items = reversed(self._items) if reverse else self._items
        for extension in items:
            try:
                getattr(extension, hook)(*args)
            except Exception:
                log.warning("cruxcelery: extension %s failed in %s; going on", extension.name, hook,
                            exc_info=True)
