"""The runtime's extension seam: the only door between the core and what plugs into it (flows,
telemetry delivery, agents). A small lifecycle protocol, guarded dispatch, and three things an
extension contributes rather than hears. docs/architecture.md describes it.

``Crux(app)`` holds an ordered list of extensions. Each lifecycle hook is dispatched to every
extension in order; a failing extension is logged and never raised into Celery (dramatiq's
``emit_after`` habit). Hooks about an execution run inside that action's redaction scope.

| hook | when | where |
| --- | --- | --- |
| ``on_received(execution)`` | a worker reserved a message of the app (``task_received``) | the worker's main process |
| ``on_process_init(worker)`` | a process that executes tasks starts | that process |
| ``on_execution_open(execution)`` | an admitted task of the app starts (``task_prerun``) | the process running it |
| ``on_execution_close(execution, outcome)`` | it ended, with its one ``Outcome`` | where the end was decided |
| ``on_worker_ready(worker)`` | a worker's consumer is ready | the worker's main process |
| ``on_worker_shutdown(worker)`` | a worker or one of its pool processes shuts down | that process |

``on_process_init`` fires in a prefork pool child after fork, or in a solo pool's process.
``on_execution_close`` hears the outcomes the worker's main process decides too (a revoke, a hard
time limit, a pool process lost for good: never an ``ok``), and ``outcome.terminal`` tells a retry
(or a pool process going away mid-task, whose message runs again) from the final end.

One question is asked of every extension, before a task of the app runs (in the process about to
run it, before ``on_execution_open``): ``admits(execution)``. Every extension must admit it; one
that fails while asked is logged and counts as admitting (at least once). ``False`` refuses the
execution (flows: a duplicate delivery of a durable child whose outcome is stored, or which a live
execution runs now): a crux action raises ``Ignore`` before its body, so the message is
acknowledged and nothing is recorded nor stored; a plain Celery task's body cannot be stopped from
outside it and runs untraced. Either way the extensions hear neither its open nor its close.

Contributions (asked in order, the first answer wins; errors propagate to the caller):

- ``route_child(ctx, call)``: take a child call of ``ctx.crux.run_action`` (flows make a call
  inside a step durable); ``None`` lets the core publish it.
- ``deferred_publisher()``: publishes a message at a later time, whatever happens to workers (flows'
  timers); the core uses it for delays longer than one countdown hop.
- ``helpers``: a class whose methods join ``ctx.crux`` (agents: generations, tools, parallel).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cruxcelery.core.envelope import Envelope
from cruxcelery.core.outcomes import Outcome

if TYPE_CHECKING:
    from celery.result import AsyncResult

    from cruxcelery.core.context import ActiveContext

log = logging.getLogger("cruxcelery.extensions")
E = TypeVar("E", bound="Extension")


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
    broker may not have taken back the messages it had reserved. ``executes`` is false in the main
    process of a prefork worker (its pool children run the tasks)."""

    app: Any
    hostname: str
    main: bool
    clean: bool = True
    executes: bool = True


@dataclass(frozen=True, slots=True)
class ChildCall:
    """A child task ``ctx.crux.run_action`` was asked to publish."""

    label: str
    task: Any
    args: Any
    options: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None


class DeferredPublisher(Protocol):
    """Publishes a task message at a later time, at least once, whatever happens to workers."""

    def publish_later(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any],
                      envelope: str | None, due_ms: int, task_id: str) -> None: ...


class Extension:
    """Subclass and override what you need; every hook defaults to doing nothing."""

    name = "extension"
    helpers: type | None = None
    """A class (no ``__init__`` arguments) whose methods join ``ctx.crux``."""

    def on_received(self, execution: Execution) -> None:
        return None

    def on_process_init(self, worker: Worker) -> None:
        return None

    def on_execution_open(self, execution: Execution) -> None:
        return None

    def on_execution_close(self, execution: Execution, outcome: Outcome) -> None:
        return None

    def on_worker_ready(self, worker: Worker) -> None:
        return None

    def on_worker_shutdown(self, worker: Worker) -> None:
        return None

    def admits(self, execution: Execution) -> bool:
        return True

    def route_child(self, ctx: ActiveContext, call: ChildCall) -> AsyncResult[Any] | None:
        return None

    def deferred_publisher(self) -> DeferredPublisher | None:
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

    def __iter__(self) -> Iterator[Extension]:
        return iter(self._items)

    def received(self, execution: Execution) -> None:
        self._dispatch("on_received", execution)

    def process_init(self, worker: Worker) -> None:
        self._dispatch("on_process_init", worker)

    def execution_open(self, execution: Execution) -> None:
        self._dispatch("on_execution_open", execution)

    def execution_close(self, execution: Execution, outcome: Outcome) -> None:
        self._dispatch("on_execution_close", execution, outcome)

    def worker_ready(self, worker: Worker) -> None:
        self._dispatch("on_worker_ready", worker)

    def worker_shutdown(self, worker: Worker) -> None:
        # in reverse, like middleware unwinding: the last registered stops first
        self._dispatch("on_worker_shutdown", worker, reverse=True)

    def admits(self, execution: Execution) -> bool:
        for extension in self._items:
            try:
                if not extension.admits(execution):
                    return False
            except Exception:
                log.warning("cruxcelery: extension %s failed in admits; the execution runs", extension.name,
                            exc_info=True)
        return True

    def route_child(self, ctx: ActiveContext, call: ChildCall) -> AsyncResult[Any] | None:
        for extension in self._items:
            routed = extension.route_child(ctx, call)
            if routed is not None:
                return routed
        return None

    def deferred_publisher(self) -> DeferredPublisher | None:
        for extension in self._items:
            publisher = extension.deferred_publisher()
            if publisher is not None:
                return publisher
        return None

    def helper_classes(self) -> tuple[type, ...]:
        return tuple(e.helpers for e in self._items if e.helpers is not None)

    def _dispatch(self, hook: str, *args: Any, reverse: bool = False) -> None:
        items = reversed(self._items) if reverse else self._items
        for extension in items:
            try:
                getattr(extension, hook)(*args)
            except Exception:
                log.warning("cruxcelery: extension %s failed in %s; going on", extension.name, hook,
                            exc_info=True)
