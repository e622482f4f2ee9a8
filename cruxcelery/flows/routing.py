"""Where ``ctx.crux.run_action`` goes when flow code calls it. Inside a step, the child is durable:
the flow records it, frees the worker and resumes with its result. In a handler outside any step,
it is published as usual, with a warning once per execution (it runs again on every resume). The
flows extension answers the seam's ``route_child`` from here; threads the code starts (such as
``ctx.crux.parallel`` branches) are never routed, like any code outside the flow's own thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from cruxcelery.core.context import ActiveContext
from cruxcelery.core.extensions import ChildCall
from cruxcelery.core.publishing import publish

log = logging.getLogger("cruxcelery.flows")

Route = Callable[[ChildCall], Any]


@dataclass(frozen=True)
class _Routing:
    route: Route
    thread: int


_routing: ContextVar[_Routing | None] = ContextVar("cruxcelery_flow_routing", default=None)


@contextmanager
def routing(route: Route) -> Iterator[None]:
    """Child calls of this thread go to ``route`` for the block."""
    token = _routing.set(_Routing(route, threading.get_ident()))
    try:
        yield
    finally:
        _routing.reset(token)


def current() -> Route | None:
    """The route of this thread's child calls, if flow code set one."""
    routing_ = _routing.get()
    return routing_.route if routing_ is not None and routing_.thread == threading.get_ident() else None


class OutsideStep:
    """The route of a flow body outside any step: it publishes as usual, and warns once per
    execution that the call repeats on every resume (wrap it in ``scope.step``)."""

    def __init__(self, ctx: ActiveContext) -> None:
        self._ctx = ctx
        self._warned = False

    def warn(self, what: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("cruxcelery: %s called outside a step in flow %s runs again on every resume; "
                        "wrap it in scope.step(...) to run it once", what, self._ctx.flow_id)

    def __call__(self, call: ChildCall) -> Any:
        self.warn(f"run_action({call.label!r})")
        return publish(self._ctx, call.label, call.task, call.args, call.options, kind="task",
                       timeout_s=call.timeout_s)


def warn_outside_step(what: str) -> None:
    """Warn (once per execution) when flow code outside a step does ``what``."""
    route = current()
    if isinstance(route, OutsideStep):
        route.warn(what)
