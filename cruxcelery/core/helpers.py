"""``ctx.crux``: child actions, in-process queries and mutations, events, artifacts and scheduling.
Extensions add their own helpers (agents: generations, tools, parallel) through the seam: the
runtime composes one ``ctx.crux`` class from this one and theirs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Task

from cruxcelery.core import context
from cruxcelery.core.extensions import ChildCall
from cruxcelery.core.publishing import publish
from cruxcelery.core.scheduling import Scheduler
from cruxcelery.errors import NotInAction

if TYPE_CHECKING:
    from celery.result import AsyncResult


class CruxHelpers:
    """``ctx.crux``: child actions, in-process queries and mutations, and scheduling."""

    scheduler = Scheduler()

    if TYPE_CHECKING:
        # helpers contributed by extensions (agents: generation, run_tool, parallel, ...) are mixed
        # in at run time: the type checker sees them as Any
        def __getattr__(self, name: str) -> Any: ...

    def run_action(
        self, label: str, task: Task[Any, Any] | str, args: Any = None, *, timeout_s: float | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """Publish ``task`` as a child across a recorded boundary; returns its ``AsyncResult``.
        ``timeout_s`` records a deadline (and the boundary's lease). Inside a flow step the child
        is durable: the flow waits for it without holding a worker."""
        ctx = require("run_action")
        routed = ctx.runtime.extensions.route_child(ctx, ChildCall(label, task, args, options, timeout_s))
        if routed is not None:
            return routed
        return publish(ctx, label, task, args, options, kind="task", timeout_s=timeout_s)

    def run_query(self, label: str, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None,
                  **kwargs: Any) -> Any:
        """Call ``fn`` in-process, recorded as a child span (never a standalone run). ``timeout_s``
        records the span's deadline, so devtools can mark it incomplete if it never ends."""
        return _in_process(label, "query", fn, args, kwargs, timeout_s)

    def run_mutation(self, label: str, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None,
                     **kwargs: Any) -> Any:
        """Like ``run_query``, recorded as a mutation."""
        return _in_process(label, "mutation", fn, args, kwargs, timeout_s)

    def event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        """Record a ``span:event`` on the current span; any values become JSON-safe previews."""
        ctx = require("event")
        ctx.segment.span_event(ctx.parent.span_id, name, attributes)

    def artifact(self, kind: str, value: Any, *, text: bool = False) -> None:
        """Attach an artifact (a JSON-safe preview of ``value``, or text) to the current span."""
        ctx = require("artifact")
        ctx.segment.artifact(ctx.parent.span_id, kind, value, text=text)


def compose(extra: tuple[type, ...]) -> CruxHelpers:
    """One ``ctx.crux`` object with the extensions' helper classes mixed in."""
    if not extra:
        return CruxHelpers()
    return type("CruxHelpers", (CruxHelpers, *extra), {"__module__": __name__})()  # type: ignore[no-any-return]


def require(what: str) -> context.ActiveContext:
    ctx = context.current()
    if ctx is None:
        raise NotInAction(f"ctx.crux.{what} needs an active Crux action")
    return ctx


def _in_process(label: str, kind: str, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any], timeout_s: float | None) -> Any:
    require(f"run_{kind}")
    deadline = time.time() + timeout_s if timeout_s is not None else None
    with context.child_span(label, "custom.operation", {"operation": kind}, deadline_at=deadline):
        return fn(*args, **kwargs)
