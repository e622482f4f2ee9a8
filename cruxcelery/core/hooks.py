"""Celery signal handlers: inject the envelope on publish, open and close every execution of an
app's task for the runtime's extensions, restore the context of plain tasks, keep it active until
``task_postrun``, and tell extensions when a worker is ready or shuts down. They never raise into
Celery."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

from celery import signals, states

from cruxcelery.core import boundaries, execution
from cruxcelery.core.args import with_ids
from cruxcelery.core.context import ActiveContext, current, enter
from cruxcelery.core.envelope import HEADER
from cruxcelery.core.extensions import Execution, Message, Worker
from cruxcelery.core.outcomes import classify
from cruxcelery.core.publishing import is_quiet, pending_envelope
from cruxcelery.telemetry.spans import RunRef, Segment, SpanRef

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

log = logging.getLogger("cruxcelery.core.hooks")
_install_lock = threading.Lock()
_installed = False


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
        signals.before_task_publish.connect(on_publish, weak=False)
        signals.task_received.connect(on_received, weak=False)
        signals.task_prerun.connect(on_prerun, weak=False)
        signals.task_postrun.connect(on_postrun, weak=False)
        signals.worker_ready.connect(on_worker_ready, weak=False)
        signals.worker_shutting_down.connect(on_worker_shutting_down, weak=False)
        signals.worker_process_shutdown.connect(on_worker_process_exit, weak=False)
        signals.worker_shutdown.connect(on_worker_exit, weak=False)
        _installed = True


def _runtime_for(app: Any) -> Runtime | None:
    from cruxcelery.core.runtime import Runtime

    return Runtime.for_app(app)


@_guarded
def on_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Inject the envelope at the top level of the headers, then tell the extensions.

    An envelope already there is kept (a child's retry re-sends its boundary unchanged), except
    when the execution that owns its run publishes its own task id again (a retry or a
    ``self.replace``): that message resumes the run. A replacement of a child takes the child's
    place: it carries the envelope the child arrived with."""
    from cruxcelery.core.runtime import Runtime

    if not isinstance(headers, dict):
        return
    ctx = current()
    runtime = ctx.runtime if ctx is not None else Runtime.current()
    if runtime is None:
        return
    if not is_quiet():
        envelope = _outgoing_envelope(ctx, headers)
        if envelope is not None:
            headers[HEADER] = runtime.codec.encode(envelope)
            _show_ids(headers, envelope)
    runtime.extensions.publish(Message(
        task_name=str(headers.get("task") or sender), task_id=headers.get("id"), headers=headers,
        envelope=runtime.codec.decode(headers.get(HEADER)) if HEADER in headers else None,
    ))


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


@_guarded
def on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A worker reserved a message (its main process): tell the extensions."""
    task = getattr(request, "task", None)
    runtime = _runtime_for(getattr(task, "app", None) or getattr(sender, "app", None))
    if runtime is None or request is None:
        return
    headers = getattr(request, "request_dict", None) or {}
    envelope = runtime.codec.decode(headers.get(HEADER))
    name = str(headers.get("task") or getattr(task, "name", None) or request.name)  # request.name may be a shadow
    runtime.extensions.received(Execution(task, request.id, name, request, envelope))


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
    """Open a frame for the task and its execution for the extensions; restore the context of a
    plain (non-crux) task that carries one and acknowledge its boundary."""
    if task_id is None:
        return
    execution.enter_frame(task_id)
    from cruxcelery.core.actions import CruxTask

    runtime = _runtime_for(getattr(task, "app", None))
    if runtime is None:
        return
    request = task.request
    envelope = execution.read_envelope(runtime, request)
    opened = _Open(runtime, Execution(task, task_id, str(task.name), request, envelope), None)
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
    """Classify how the execution ended (the one ``Outcome``), acknowledge a plain task's boundary,
    tell the extensions, then restore the context from before prerun."""
    if task_id is None:
        return
    try:
        opened = _open.by_task.pop(task_id, None)
        if opened is None:
            return
        error = retval if state != states.SUCCESS and isinstance(retval, BaseException) else None
        outcome = classify(error, task, opened.execution.request, None if error else retval)
        envelope = opened.execution.envelope
        if opened.plain is not None and envelope is not None and outcome.terminal:
            boundaries.finished(opened.plain, envelope, outcome.span_status, outcome.span_error)
        opened.runtime.extensions.execution_close(opened.execution, outcome)
        if opened.plain is not None:
            opened.runtime.flush()
    finally:
        execution.exit_frame(task_id)


def _worker(app: Any, main: bool, clean: bool = True) -> Worker:
    return Worker(app=app, hostname=socket.gethostname(), main=main, clean=clean)


@_guarded
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """The worker's consumer is ready (main process): extensions start what they run there."""
    from cruxcelery.core.runtime import Runtime

    app = getattr(sender, "app", None)
    for runtime in Runtime.instances():
        if app is None or runtime.app is app:
            hostname = str(getattr(sender, "hostname", "") or socket.gethostname())
            runtime.extensions.worker_ready(Worker(app=runtime.app, hostname=hostname, main=True))


@_guarded
def on_worker_shutting_down(sender: Any = None, **_: Any) -> None:
    """The main process starts a shutdown: flush what it holds (pool children flush on exit)."""
    from cruxcelery.core.runtime import Runtime

    for runtime in Runtime.instances():
        runtime.flush()


@_guarded
def on_worker_process_exit(sender: Any = None, **_: Any) -> None:
    """A pool process exits."""
    from cruxcelery.core.runtime import Runtime

    for runtime in Runtime.instances():
        runtime.extensions.worker_shutdown(_worker(runtime.app, main=False))


@_guarded
def on_worker_exit(sender: Any = None, **_: Any) -> None:
    """The worker exits (``sender.exitcode``: 0 or None after a warm or cold shutdown, 1 after an
    unrecoverable error, such as kombu failing to requeue its reserved messages)."""
    from cruxcelery.core.runtime import Runtime

    app = getattr(sender, "app", None)
    clean = getattr(sender, "exitcode", None) in (None, 0)
    for runtime in Runtime.instances():
        if app is None or runtime.app is app:
            runtime.extensions.worker_shutdown(_worker(runtime.app, main=True, clean=clean))
