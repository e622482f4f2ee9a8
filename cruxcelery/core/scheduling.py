"""``ctx.crux.scheduler.run_after``: countdown tasks, detached by default. A delay longer than
one timer hop (at most half the broker's visibility timeout) is handed to the runtime's deferred
publisher (the flow timers: a sorted set swept by every worker), because the Redis transport
redelivers an ETA message that waits unacked past the visibility timeout (celery #2599,
kombu #337)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from celery import Task
from celery.result import AsyncResult

from cruxcelery.core import context
from cruxcelery.core.envelope import Envelope, TaskBinding
from cruxcelery.core.publishing import message, publish, send_now
from cruxcelery.errors import CruxError, NotInAction

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime

MAX_HOP_S = 300.0
log = logging.getLogger("cruxcelery")


def hop_s(runtime: Runtime) -> float:
    """The longest countdown cruxcelery publishes: ``CRUX_TIMER_HOP_S``, else half the broker's
    visibility timeout, at most five minutes."""
    if runtime.settings.timer_hop_s is not None:
        return runtime.settings.timer_hop_s
    options = runtime.app.conf.broker_transport_options or {}
    return max(0.5, min(MAX_HOP_S, float(options.get("visibility_timeout", 3600)) / 2))


class Scheduler:
    def run_after(
        self, label: str, delay_s: float, task: Task[Any, Any] | str, args: Any = None,
        observability: Envelope | dict[str, Any] | str | None = None, **options: Any,
    ) -> AsyncResult[Any]:
        """Publish ``task`` after ``delay_s`` seconds. The enqueue is recorded in the current
        trace (a ``runtime.celery.schedule`` span). By default the task starts its own run,
        linked to that span; with ``observability=capture_context()`` it continues that run in a
        new segment."""
        ctx = context.current()
        if ctx is None:
            raise NotInAction("ctx.crux.scheduler.run_after needs an active Crux action")
        if not isinstance(delay_s, int | float) or isinstance(delay_s, bool) or not delay_s >= 0:
            raise CruxError(f"run_after: delay_s must be a number >= 0, got {delay_s!r}")
        envelope = None
        if observability is not None:
            envelope = (observability if isinstance(observability, Envelope)
                        else ctx.runtime.codec.decode(observability))
            if envelope is None:
                raise CruxError("run_after: observability= is not a valid captured context")
        deferred = delay_s > hop_s(ctx.runtime) and ctx.runtime.deferred is not None
        return publish(ctx, label, task, args, {**options, "countdown": delay_s}, kind="schedule",
                       detached=envelope is None, envelope=envelope, end_span=True,
                       sender=send_deferred if deferred else send_now)


def send_deferred(ctx: context.ActiveContext, task: Task[Any, Any] | str, args: Any, options: dict[str, Any],
                   envelope: Envelope) -> AsyncResult[Any]:
    """A ``publishing.Sender`` that hands the message to the runtime's deferred publisher, due
    ``options["countdown"]`` seconds from now."""
    runtime = ctx.runtime
    deferred = runtime.deferred
    assert deferred is not None
    name, positional, keywords = message(runtime.app, task, args)
    rest = dict(options)
    delay_s = float(rest.pop("countdown"))
    task_id = str(rest.pop("task_id", None) or uuid.uuid4())
    encoded = runtime.codec.encode(envelope, TaskBinding.of(task_id, name))  # signed for the task it will be
    deferred.publish_later(name, positional, keywords, rest, encoded, int((time.time() + delay_s) * 1000), task_id)
    return AsyncResult(task_id, app=runtime.app)
