"""Celery signal handlers: inject the envelope on publish, restore it for plain tasks, keep the
context active until ``task_postrun``, flush on worker shutdown. They never raise into Celery."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from celery import signals, states

from cruxcelery import boundaries, execution
from cruxcelery.context import ActiveContext, current, enter
from cruxcelery.envelope import HEADER, Envelope
from cruxcelery.errors import CruxError
from cruxcelery.publishing import is_quiet, pending_envelope
from cruxcelery.telemetry.spans import RunRef, Segment, SpanRef

if TYPE_CHECKING:
    from cruxcelery.runtime import Crux

log = logging.getLogger("cruxcelery.hooks")
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
    """Connect the handlers once per process (``weak=False``); they serve every ``Crux``."""
    global _installed
    with _install_lock:
        if _installed:
            return
        signals.before_task_publish.connect(on_publish, weak=False)
        signals.task_prerun.connect(on_prerun, weak=False)
        signals.task_postrun.connect(on_postrun, weak=False)
        signals.worker_shutting_down.connect(on_worker_shutting_down, weak=False)
        for signal in (signals.worker_process_shutdown, signals.worker_shutdown):
            signal.connect(on_worker_exit, weak=False)
        _installed = True


@_guarded
def on_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Inject the envelope at the top level of the headers. An envelope already there is kept
    (a child's retry re-sends its boundary unchanged), except on a retry of the execution that
    owns its run: that retry resumes the run from the attempt that just failed."""
    if not isinstance(headers, dict) or is_quiet():
        return
    ctx = current()
    retry_of_owner = ctx is not None and ctx.owner and headers.get("id") == ctx.task_id
    if HEADER in headers and not retry_of_owner:
        return
    envelope = pending_envelope()
    if envelope is None:
        if ctx is None:
            return
        envelope = ctx.envelope(owner=True) if retry_of_owner else ctx.envelope()
    from cruxcelery.runtime import Crux

    runtime = ctx.runtime if ctx is not None else Crux.current()
    if runtime is not None:
        headers[HEADER] = runtime.codec.encode(envelope)


class _Plain(threading.local):
    def __init__(self) -> None:
        self.executions: dict[str, tuple[Crux, Segment, Envelope]] = {}


_plain = _Plain()


@_guarded
def on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Open a frame for the task; restore the context of a plain (non-crux) task that carries one
    and acknowledge its boundary."""
    if task_id is None:
        return
    execution.enter_frame(task_id)
    from cruxcelery.actions import CruxTask
    from cruxcelery.runtime import Crux

    runtime = Crux.for_app(getattr(task, "app", None))
    if runtime is None or isinstance(task, CruxTask):
        return
    envelope = execution.read_envelope(runtime, task.request)
    if envelope is None or envelope.kind != "continuation":
        return
    segment = Segment(runtime.recorder, RunRef(envelope.operation_id, envelope.run_id, envelope.trace_id))
    attempt = int(getattr(task.request, "retries", 0) or 0) + 1
    boundaries.received(segment, envelope, str(task.name), task_id, attempt)
    ctx = ActiveContext(
        runtime, segment, SpanRef(envelope.trace_id, envelope.parent_span_id),
        envelope.run_name or str(task.name), envelope.run_started_at or time.time(), task_id=task_id,
        flow_id=envelope.flow_id,
    )
    execution.defer_or_run(task_id, enter(ctx, attach_otel=False))
    _plain.executions[task_id] = (runtime, segment, envelope)


@_guarded
def on_postrun(sender: Any = None, task_id: str | None = None, task: Any = None, retval: Any = None,
               state: str | None = None, **_: Any) -> None:
    """Acknowledge a plain task's boundary, flush, then restore the context from before prerun."""
    if task_id is None:
        return
    try:
        plain = _plain.executions.pop(task_id, None)
        if plain is not None and state in (states.SUCCESS, states.FAILURE):
            runtime, segment, envelope = plain
            error: BaseException | None = None
            if state == states.FAILURE:
                error = retval if isinstance(retval, BaseException) else CruxError(str(retval))
            boundaries.finished(segment, envelope, "ok" if error is None else "error", error)
            runtime.notify_completion(envelope, task_id, None if error else retval, error)
            runtime.flush()
    finally:
        execution.exit_frame(task_id)


@_guarded
def on_worker_shutting_down(sender: Any = None, **_: Any) -> None:
    """The main process starts a shutdown: flush what it holds (pool children flush on exit)."""
    from cruxcelery.runtime import Crux

    for runtime in Crux.instances():
        runtime.flush()


@_guarded
def on_worker_exit(sender: Any = None, **_: Any) -> None:
    """A pool child or the worker exits: flush what is left and stop the exporters. Best
    effort: the guarantee is the flush at the end of every action."""
    from cruxcelery.runtime import Crux

    for runtime in Crux.instances():
        runtime.shutdown()
