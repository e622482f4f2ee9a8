"""Celery signal handlers, the one place the core hears Celery: inject the envelope on publish,
open and close every execution of an app's task for the runtime's extensions (with the one
``Outcome``, inside the action's redaction scope), hear the outcomes the worker's main process
decides (a revoke, a hard time limit, a lost pool process), restore the context of plain tasks,
keep it active until ``task_postrun``, and tell extensions when a process starts, a worker is
ready or shuts down. They never raise into Celery."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

from celery import signals, states
from celery.exceptions import TaskRevokedError, TimeLimitExceeded, WorkerLostError

from cruxcelery.core import boundaries, execution, registry
from cruxcelery.core.actions import CruxTask
from cruxcelery.core.args import with_ids
from cruxcelery.core.context import ActiveContext, current, enter
from cruxcelery.core.envelope import HEADER, TaskBinding
from cruxcelery.core.extensions import Execution, Worker
from cruxcelery.core.outcomes import Outcome, classify, decided_by_worker, interrupted
from cruxcelery.core.publishing import is_quiet, pending_envelope
from cruxcelery.telemetry import redaction
from cruxcelery.telemetry.spans import RunRef, Segment, SpanRef

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

log = logging.getLogger("cruxcelery.hooks")
_install_lock = threading.Lock()
_installed = False
RECEIVED_KEPT = 10_000
"""The main process remembers this many reserved executions, to close those it decides the end of."""


def _guarded(fn: Callable[..., None]) -> Callable[..., None]:
    @wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.warning("cruxcelery: %s hook failed; the task goes on", fn.__name__, exc_info=True)

    return handler


def install() -> None:
    """Connect the handlers once per process (``weak=False``); they serve every runtime."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for signal, handler in _HANDLERS.items():
            getattr(signals, signal).connect(handler, weak=False)
        _installed = True


# -- publishing --------------------------------------------------------------------------------

@_guarded
def on_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Inject the envelope at the top level of the headers.

    An envelope already there is kept (a child's retry re-sends its boundary unchanged), except
    when the execution that owns its run publishes its own task id again (a retry or a
    ``self.replace``): that message resumes the run. A replacement of a child takes the child's
    place: it carries the envelope the child arrived with."""
    if not isinstance(headers, dict) or is_quiet():
        return
    ctx = current()
    runtime = ctx.runtime if ctx is not None else registry.current()
    if runtime is None:
        return
    envelope = _outgoing_envelope(ctx, headers)
    if envelope is not None:
        headers[HEADER] = runtime.codec.encode(envelope, TaskBinding.of(headers.get("id"), headers.get("task")))
        _show_ids(headers, envelope)


def _show_ids(headers: dict[str, Any], envelope: Any) -> None:
    """Flower shows ``kwargsrepr``: the run (and flow) ids there lead from Flower to devtools."""
    if isinstance(headers.get("kwargsrepr"), str):
        ids = {"crux.run_id": envelope.run_id, "crux.trace_id": envelope.trace_id}
        if envelope.flow_id:
            ids["crux.flow_id"] = envelope.flow_id
        headers["kwargsrepr"] = with_ids(headers["kwargsrepr"], ids)


def _outgoing_envelope(ctx: ActiveContext | None, headers: dict[str, Any]) -> Any:
    same_task = ctx is not None and headers.get("id") == ctx.task_id
    if ctx is not None and same_task and ctx.owner:
        return ctx.envelope(owner=True)
    if ctx is not None and same_task and HEADER not in headers and ctx.incoming is not None:
        return ctx.incoming
    if HEADER in headers:
        return None
    envelope = pending_envelope()
    if envelope is None and ctx is not None:
        envelope = ctx.envelope()
    return envelope


# -- the worker's main process -----------------------------------------------------------------

@dataclass
class _Received:
    runtime: Runtime
    execution: Execution


class _ReceivedExecutions:
    """Reserved executions, newest last, bounded: the main process closes the ones whose end it
    decides (``task_failure`` there carries no request)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, _Received] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, task_id: str, item: _Received) -> None:
        with self._lock:
            self._items[task_id] = item
            self._items.move_to_end(task_id)
            while len(self._items) > RECEIVED_KEPT:
                self._items.popitem(last=False)

    def pop(self, task_id: str) -> _Received | None:
        with self._lock:
            return self._items.pop(task_id, None)


_received = _ReceivedExecutions()


@_guarded
def on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A worker reserved a message (its main process): tell the extensions."""
    task = getattr(request, "task", None)
    runtime = registry.for_app(getattr(task, "app", None) or getattr(sender, "app", None))
    if runtime is None or request is None:
        return
    headers = getattr(request, "request_dict", None) or {}
    name = str(headers.get("task") or getattr(task, "name", None) or request.name)  # request.name may be a shadow
    envelope = runtime.codec.decode(headers.get(HEADER), TaskBinding.of(request.id, name))
    if envelope is None and HEADER in headers and isinstance(headers, dict):
        # checked here, before Celery hands the request to the pool: a hostile header (deep, huge,
        # forged, signed for another task) never reaches the pickling of the request, nor the task
        # (it runs as a new root run)
        del headers[HEADER]
    runtime.extensions.received(Execution(task, request.id, name, request, envelope))
    # kept without the request: the main process may have to close it (see on_failure, on_revoked)
    _received.add(str(request.id), _Received(runtime, Execution(task, request.id, name, None, envelope)))


@_guarded
def on_failure(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
               **_: Any) -> None:
    """A failure the main process decided (a hard time limit, a pool process lost for good). The
    failures of a running task are closed by its own ``task_postrun``."""
    if task_id is None or not isinstance(exception, TimeLimitExceeded | WorkerLostError):
        return
    if execution.is_open(task_id):  # the process running the task closes it
        return
    _close_decided(task_id, decided_by_worker(exception, sender), sender, None)


@_guarded
def on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A revoke the main process applied (before the task ran, or by terminating it)."""
    task_id = getattr(request, "id", None)
    if task_id is None:
        return
    _close_decided(str(task_id), decided_by_worker(TaskRevokedError(f"task {task_id} was revoked"), sender),
                   sender, request)


def _close_decided(task_id: str, outcome: Outcome, task: Any, request: Any) -> None:
    received = _received.pop(task_id)
    if received is not None:
        runtime, decided = received.runtime, received.execution
    else:
        found = registry.for_app(getattr(task, "app", None))
        if found is None or request is None:
            return
        runtime = found
        name = str(getattr(task, "name", ""))
        decided = Execution(task, task_id, name, request, execution.read_envelope(runtime, request, task_id, name))
    envelope = decided.envelope
    if outcome.terminal and envelope is not None and envelope.kind == "continuation":
        segment = Segment(runtime.recorder, RunRef(envelope.operation_id, envelope.run_id, envelope.trace_id))
        boundaries.finished(segment, envelope, outcome.span_status, outcome.span_error)
    runtime.extensions.execution_close(decided, outcome)
    runtime.flush(runtime.settings.boundary_flush_timeout_s)


# -- the process running the task --------------------------------------------------------------

@dataclass
class _Open:
    runtime: Runtime
    execution: Execution
    plain: Segment | None  # a plain task continuing a run: its segment acknowledges the boundary


class _OpenExecutions(threading.local):
    def __init__(self) -> None:
        self.by_task: dict[str, _Open] = {}


_open = _OpenExecutions()


@_guarded
def on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Open a frame for the task and, once every extension admits it, its execution for the
    extensions; restore the context of a plain (non-crux) task that carries one and acknowledge
    its boundary."""
    if task_id is None:
        return
    execution.enter_frame(task_id)
    runtime = registry.for_app(getattr(task, "app", None))
    if runtime is None:
        return
    request = task.request
    envelope = execution.read_envelope(runtime, request, task_id, str(task.name))
    opened = _Open(runtime, Execution(task, task_id, str(task.name), request, envelope), None)
    if not runtime.extensions.admits(opened.execution):
        execution.refuse(task_id)  # a crux action skips its body; the extensions hear nothing of it
        if not isinstance(task, CruxTask):
            log.warning("cruxcelery: task %s[%s] was refused (a duplicate delivery), but a plain Celery task's "
                        "body cannot be skipped: it runs, untraced", task.name, task_id)
        return
    _open.by_task[task_id] = opened
    if not isinstance(task, CruxTask) and envelope is not None and envelope.kind == "continuation":
        segment = Segment(runtime.recorder, RunRef(envelope.operation_id, envelope.run_id, envelope.trace_id))
        attempt = int(getattr(request, "retries", 0) or 0) + 1
        boundaries.received(segment, envelope, str(task.name), task_id, attempt)
        ctx = ActiveContext(
            runtime, segment, SpanRef(envelope.trace_id, envelope.parent_span_id),
            envelope.run_name or str(task.name), envelope.run_started_at or time.time(), task_id=task_id,
            flow_id=envelope.flow_id, incoming=envelope,
        )
        execution.defer_or_run(task_id, enter(ctx, attach_otel=False))
        opened.plain = segment
    runtime.extensions.execution_open(opened.execution)


@_guarded
def on_postrun(sender: Any = None, task_id: str | None = None, task: Any = None, retval: Any = None,
               state: str | None = None, **_: Any) -> None:
    """Close the execution with its one ``Outcome`` (an action classified its own; a plain task's
    is classified here; no state means the process is going away mid-task), acknowledge a plain
    task's boundary, tell the extensions inside the action's redaction scope, then restore the
    context from before prerun."""
    if task_id is None:
        return
    try:
        opened = _open.by_task.pop(task_id, None)
        settled = execution.take_settled(task_id)
        _received.pop(task_id)  # a solo or thread pool: this process received it too
        if opened is None:
            return
        if settled is not None:
            outcome = settled.outcome
        elif state is None:
            outcome = interrupted(retval if isinstance(retval, BaseException) else None)
        else:
            error = retval if state != states.SUCCESS and isinstance(retval, BaseException) else None
            outcome = classify(error, task, opened.execution.request, None if error else retval)
        envelope = opened.execution.envelope
        if opened.plain is not None and envelope is not None and outcome.terminal:
            boundaries.finished(opened.plain, envelope, outcome.span_status, outcome.span_error)
        secrets = settled.secrets if settled is not None else ()
        with redaction.secrets(secrets) if secrets else nullcontext():
            opened.runtime.extensions.execution_close(opened.execution, outcome)
            if opened.plain is not None:
                opened.runtime.flush()
    finally:
        execution.exit_frame(task_id)


# -- workers -----------------------------------------------------------------------------------

class _Process:
    prefork_parent = False  # this process is a prefork worker's main process: its children run the tasks


_PROCESS = _Process()


def _worker(app: Any, *, main: bool, clean: bool = True, hostname: str | None = None) -> Worker:
    return Worker(app=app, hostname=hostname or socket.gethostname(), main=main, clean=clean,
                  executes=not (main and _PROCESS.prefork_parent))


@_guarded
def on_worker_init(sender: Any = None, **_: Any) -> None:
    """The worker starts (main process): remember whether a prefork pool runs its tasks."""
    from celery.concurrency.prefork import TaskPool  # celery's prefork pool, imported only by a worker

    pool_cls = getattr(sender, "pool_cls", None)
    _PROCESS.prefork_parent = isinstance(pool_cls, type) and issubclass(pool_cls, TaskPool)


@_guarded
def on_process_init(sender: Any = None, **_: Any) -> None:
    """A process that executes tasks starts: a prefork pool child after fork, or a solo pool's."""
    _PROCESS.prefork_parent = False
    for runtime in registry.instances():
        runtime.extensions.process_init(_worker(runtime.app, main=False))


@_guarded
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """The worker's consumer is ready (main process): extensions start what they run there."""
    app = getattr(sender, "app", None)
    for runtime in registry.instances():
        if app is None or runtime.app is app:
            hostname = str(getattr(sender, "hostname", "") or socket.gethostname())
            runtime.extensions.worker_ready(_worker(runtime.app, main=True, hostname=hostname))


@_guarded
def on_worker_shutting_down(sender: Any = None, **_: Any) -> None:
    """The main process starts a shutdown: flush what it holds (pool children flush on exit)."""
    for runtime in registry.instances():
        runtime.flush()


@_guarded
def on_worker_process_exit(sender: Any = None, **_: Any) -> None:
    """A pool process exits."""
    for runtime in registry.instances():
        runtime.extensions.worker_shutdown(_worker(runtime.app, main=False))


@_guarded
def on_worker_exit(sender: Any = None, **_: Any) -> None:
    """The worker exits (``sender.exitcode``: 0 or None after a warm or cold shutdown, 1 after an
    unrecoverable error, such as kombu failing to requeue its reserved messages)."""
    app = getattr(sender, "app", None)
    clean = getattr(sender, "exitcode", None) in (None, 0)
    for runtime in registry.instances():
        if app is None or runtime.app is app:
            runtime.extensions.worker_shutdown(_worker(runtime.app, main=True, clean=clean))


_HANDLERS: dict[str, Callable[..., None]] = {  # Celery's signal -> ours
    "before_task_publish": on_publish, "task_received": on_received, "task_prerun": on_prerun,
    "task_postrun": on_postrun, "task_failure": on_failure, "task_revoked": on_revoked,
    "worker_init": on_worker_init, "worker_process_init": on_process_init, "worker_ready": on_worker_ready,
    "worker_shutting_down": on_worker_shutting_down, "worker_process_shutdown": on_worker_process_exit,
    "worker_shutdown": on_worker_exit,
}
