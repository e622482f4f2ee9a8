"""Publishing a child task across a boundary: open the boundary span, flush it (bounded), then
publish with the boundary's envelope. The publish hook reads the envelope from ``outgoing``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from celery import Task

from cruxcelery.core import args as action_args
from cruxcelery.core import boundaries, context
from cruxcelery.core.actions import CruxTask, flower_options
from cruxcelery.core.envelope import Envelope
from cruxcelery.errors import CruxError

if TYPE_CHECKING:
    from celery.result import AsyncResult

_outgoing: ContextVar[Envelope | None] = ContextVar("cruxcelery_outgoing", default=None)
_quiet: ContextVar[bool] = ContextVar("cruxcelery_quiet", default=False)


def pending_envelope() -> Envelope | None:
    """The envelope the next publish in this context must carry, if one was set."""
    return _outgoing.get()


def is_quiet() -> bool:
    """True while cruxcelery publishes its own bookkeeping tasks (no envelope wanted)."""
    return _quiet.get()


@contextmanager
def quiet() -> Iterator[None]:
    """Publish without an envelope: wake-ups and resumes carry their context in Redis."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


@contextmanager
def outgoing(envelope: Envelope | None) -> Iterator[None]:
    token = _outgoing.set(envelope)
    try:
        yield
    finally:
        _outgoing.reset(token)


def message(app: Any, task: Task[Any, Any] | str, args: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """``(task name, args, kwargs)`` as they will travel: a crux action's argument validated (its
    one dict or model), a plain task's dict as keywords, list or tuple as positional, or None."""
    name, positional, keywords, _ = _message(app, task, args)
    return name, positional, keywords


def _message(app: Any, task: Task[Any, Any] | str,
             args: Any) -> tuple[str, tuple[Any, ...], dict[str, Any], Any]:
    """``message()`` and the validated value (what Flower's reprs summarise)."""
    target = app.tasks.get(task) if isinstance(task, str) else task
    if isinstance(target, CruxTask):
        value = action_args.coerce(target.crux_args_model, () if args is None else (args,), {}, target.name)
        return str(target.name), *action_args.to_message(value), value
    positional, keywords = _split(args)
    return task_name(task), positional, keywords, (keywords if keywords or not positional else positional)


def send(
    ctx: context.ActiveContext, task: Task[Any, Any] | str, args: Any, options: dict[str, Any]
) -> AsyncResult[Any]:
    """Publish now, through the task's own ``apply_async`` when this process knows the task."""
    app = ctx.runtime.app
    name, positional, keywords, value = _message(app, task, args)
    target = app.tasks.get(name) if isinstance(task, str) else task
    options = flower_options(value, options)
    if target is None:
        return app.send_task(name, args=positional, kwargs=keywords, **options)
    # already validated by message(): skip CruxTask.apply_async's second validation
    return Task.apply_async(target, positional, keywords, **options)


def _split(args: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args is None:
        return (), {}
    if isinstance(args, dict):
        return (), args
    if isinstance(args, list | tuple):
        return tuple(args), {}
    raise CruxError(f"plain Celery task args must be a dict, list or tuple, not {type(args).__name__}")


Sender = Callable[[context.ActiveContext, "Task[Any, Any] | str", Any, dict[str, Any], Envelope], "AsyncResult[Any]"]


def send_now(ctx: context.ActiveContext, task: Task[Any, Any] | str, args: Any, options: dict[str, Any],
              envelope: Envelope) -> AsyncResult[Any]:
    with outgoing(envelope):
        return send(ctx, task, args, options)


def task_name(task: Task[Any, Any] | str) -> str:
    return task if isinstance(task, str) else str(task.name)


def publish(
    ctx: context.ActiveContext, label: str, task: Task[Any, Any] | str, args: Any, options: dict[str, Any],
    *, kind: boundaries.BoundaryKind, detached: bool = False, envelope: Envelope | None = None,
    end_span: bool = False, envelope_fields: dict[str, Any] | None = None, timeout_s: float | None = None,
    sender: Sender = send_now,
) -> AsyncResult[Any]:
    """Open the boundary, flush (bounded), publish with the envelope, return the result.

    ``detached``: the child starts its own run linked to the boundary span; ``envelope``: publish
    with that envelope instead (a captured continuation); ``end_span``: the boundary span ends at
    publish (an enqueue), else the child ends it when it completes."""
    runtime = ctx.runtime
    target = runtime.app.tasks.get(task) if isinstance(task, str) else task
    lease = timeout_s if timeout_s is not None else boundaries.lease_seconds(target, runtime.settings.default_lease_s)
    span, child_env = boundaries.request(ctx, label, task_name(task), kind, lease,
                                         envelope_fields=envelope_fields, deadline=timeout_s is not None)
    if detached:
        child_env = child_env.model_copy(update={"kind": "detached"})
    runtime.flush(runtime.settings.boundary_flush_timeout_s)
    try:
        with context.activate(replace(ctx, span=span, parent=span.ref)):
            result = sender(ctx, task, args, options, envelope or child_env)
    except BaseException as exc:
        span.end("error", exc)
        raise
    if end_span:
        span.end("ok")
    else:
        span.otel_span.end()  # the OTel span covers the request; the child ends the Crux span
    return result
