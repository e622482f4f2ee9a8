"""Bounded flushing: ``flush_observability``, ``with_observability_flush`` and the per-execution
flush budget (every flush of one action, at its boundaries and in its ``finally``, shares one
bound, so a dead devtools server costs an action at most ``CRUX_FLUSH_TIMEOUT_S``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from cruxcelery.core import registry
from cruxcelery.telemetry.exporter import FlushResult

F = TypeVar("F", bound=Callable[..., Any])


class FlushBudget:
    def __init__(self, total_s: float) -> None:
        self._remaining = max(total_s, 0.0)

    def remaining(self) -> float:
        return self._remaining

    def spend(self, seconds: float) -> None:
        self._remaining = max(self._remaining - seconds, 0.0)


_budget: ContextVar[FlushBudget | None] = ContextVar("cruxcelery_flush_budget", default=None)


def bounded(timeout_s: float) -> float:
    """``timeout_s``, cut to what the active budget has left."""
    budget = _budget.get()
    return timeout_s if budget is None else min(timeout_s, budget.remaining())


def spent(seconds: float) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend(seconds)


@contextmanager
def budget(total_s: float) -> Iterator[FlushBudget]:
    """Every flush inside the block shares ``total_s`` seconds."""
    current = FlushBudget(total_s)
    token = _budget.set(current)
    try:
        yield current
    finally:
        _budget.reset(token)


def flush_observability(timeout_s: float | None = None) -> FlushResult:
    """Deliver pending records of every ``Crux`` in this process, bounded by ``timeout_s``
    (default ``CRUX_FLUSH_TIMEOUT_S``). Never raises."""
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else _default_timeout())
    result = FlushResult()
    for runtime in registry.instances():
        result = result.merge(runtime.flush(max(deadline - time.monotonic(), 0.0)))
    return result


def _default_timeout() -> float:
    runtime = registry.current()
    return runtime.settings.flush_timeout_s if runtime is not None else 3.0


@contextmanager
def _flushing(timeout_s: float | None) -> Iterator[None]:
    try:
        yield
    finally:
        flush_observability(timeout_s)


class with_observability_flush:
    """Flush (bounded) when the block or the decorated function ends, however it ends::

        with with_observability_flush():
            ...

        @with_observability_flush(timeout_s=1.0)
        def handler(): ...
    """

    def __init__(self, fn: Callable[..., Any] | None = None, *, timeout_s: float | None = None) -> None:
        self._fn = fn
        self._timeout_s = timeout_s
        if fn is not None:
            functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fn is None:  # @with_observability_flush(timeout_s=...)
            return with_observability_flush(args[0], timeout_s=self._timeout_s)
        with _flushing(self._timeout_s):
            return self._fn(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """Decorating a method: bind it like a function would be bound."""
        if instance is None or self._fn is None:
            return self
        return functools.partial(self.__call__, instance)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        flush_observability(self._timeout_s)
