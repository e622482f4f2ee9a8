"""Infrastructure errors are not user failures. Inside an execution, a Redis or broker error
under the engine becomes ``EngineInterrupted`` (a ``FlowControl``: a step's ``except Exception``
cannot swallow it), which leaves the flow resumable; at the public API it becomes a typed
``StoreUnavailable`` / ``BrokerUnavailable`` with the cause attached."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
from kombu.exceptions import OperationalError

from cruxcelery.errors import BrokerUnavailable, StoreUnavailable
from cruxcelery.flows.errors import FlowControl

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OperationalError,
                                                           StoreUnavailable, BrokerUnavailable)


class EngineInterrupted(FlowControl):
    """Redis or the broker failed under the engine: this execution stops, the flow stays resumable."""

    span_status = "cancelled"


def typed(fn: F) -> F:
    """Public API calls raise ``StoreUnavailable`` / ``BrokerUnavailable``, never raw client errors."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"the flow store (Redis) is unavailable: {exc}. Check CRUX_REDIS_URL and "
                                   "that Redis answers, then retry.") from exc
        except OperationalError as exc:
            raise BrokerUnavailable(f"the Celery broker is unavailable: {exc}. What was stored stays; "
                                    "retry, or let the sweeper publish it once the broker answers.") from exc

    return cast(F, call)


class _Guarded:
    """A store whose every call, on it or on one of its parts (those it names in ``PARTS``), turns
    an infrastructure error into ``EngineInterrupted``."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in getattr(self._store, "PARTS", ()):
            return _Guarded(attr)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except INFRASTRUCTURE_ERRORS as exc:
                raise EngineInterrupted(f"{name}: {exc}") from exc

        return call


def guarded(store: T) -> T:
    return cast(T, _Guarded(store))


def interruptible(fn: Callable[[], T]) -> T:
    """Run an engine-side call (a publish, a timer) turning infrastructure errors into
    ``EngineInterrupted``."""
    try:
        return fn()
    except INFRASTRUCTURE_ERRORS as exc:
        raise EngineInterrupted(str(exc)) from exc
