"""``ctx.crux.scheduler.run_after``: countdown tasks, detached by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Task

from cruxcelery import context
from cruxcelery.envelope import Envelope
from cruxcelery.errors import CruxError, NotInAction

if TYPE_CHECKING:
    from celery.result import AsyncResult


class Scheduler:
    def run_after(
        self, label: str, delay_s: float, task: Task[Any, Any] | str, args: Any = None,
        observability: Envelope | dict[str, Any] | str | None = None, **options: Any,
    ) -> AsyncResult[Any]:
        """Publish ``task`` with ``countdown=delay_s``. The enqueue is recorded in the current
        trace (a ``runtime.celery.schedule`` span). By default the task starts its own run,
        linked to that span; with ``observability=capture_context()`` it continues that run in a
        new segment."""
        from cruxcelery.publishing import publish

        ctx = context.current()
        if ctx is None:
            raise NotInAction("ctx.crux.scheduler.run_after needs an active Crux action")
        if delay_s < 0:
            raise CruxError(f"run_after: delay_s must be >= 0, got {delay_s}")
        envelope = None
        if observability is not None:
            envelope = (observability if isinstance(observability, Envelope)
                        else ctx.runtime.codec.decode(observability))
            if envelope is None:
                raise CruxError("run_after: observability= is not a valid captured context")
        options = {**options, "countdown": delay_s}
        return publish(ctx, label, task, args, options, kind="schedule", detached=envelope is None,
                       envelope=envelope, end_span=True)
