"""``crux.action``: Celery tasks that act as Crux actions (``CruxTask``), their arguments as
Flower shows them, and the secret values of their args."""

from __future__ import annotations

import logging
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded, TaskPredicate, TimeLimitExceeded
from pydantic import BaseModel, SecretBytes, SecretStr

from cruxcelery.core import args as action_args
from cruxcelery.core import context, execution, flushing
from cruxcelery.core.context import ActionContext
from cruxcelery.errors import InvalidArgs
from cruxcelery.telemetry import redaction

if TYPE_CHECKING:
    from celery.result import AsyncResult

    from cruxcelery.core.runtime import Runtime

DEFAULT_ROOT_PRIMITIVE = "runtime.celery.task"
log = logging.getLogger("cruxcelery")


def action_context(runtime: Runtime, task: Task[Any, Any], request: Any) -> ActionContext:
    """The ``ctx`` a handler receives (flows build one for each execution)."""
    return ActionContext(runtime.helpers, task, request)


class CruxTask(Task[Any, Any]):
    """A Celery task that restores Crux context, opens its run or span, validates its args at the
    caller and in the worker, and flushes telemetry in ``finally``."""

    crux_runtime: Runtime
    crux_fn: Callable[[ActionContext, Any], Any]
    crux_args_model: type[BaseModel] | None = None
    crux_observability_name: str = ""
    crux_root_primitive: str = DEFAULT_ROOT_PRIMITIVE
    crux_attributes: dict[str, Any] = {}

    # Celery's options pass through untouched; only the argument shape is narrowed.
    def apply_async(  # type: ignore[override]
        self, args: tuple[Any, ...] | list[Any] | None = None, kwargs: dict[str, Any] | None = None,
        task_id: str | None = None, **options: Any,
    ) -> AsyncResult[Any]:
        """Validate before publishing: invalid args raise ``InvalidArgs`` and nothing is sent (nor
        when the app was switched to pickle after ``Crux(app)``: ``ConfigurationError``)."""
        self.crux_runtime.check_json_only()
        value = action_args.coerce(self.crux_args_model, tuple(args or ()), dict(kwargs or {}), self.name)
        positional, keywords = action_args.to_message(value)
        return super().apply_async(positional, keywords, task_id, **flower_options(value, options))

    def shadow_name(self, args: Any, kwargs: Any, options: Any) -> str | None:  # type: ignore[override]
        """The name Flower, the logs and task events show: the action's ``observability_name``."""
        name = self.crux_observability_name
        return name if name and name != self.name else None

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any], found: list[Any] | None = None,
              scope: ExitStack | None = None) -> Any:
        value = action_args.coerce(self.crux_args_model, args, kwargs, self.name)
        if scope is not None and found is not None and may_hold_secrets(self.crux_args_model):
            _safely(_redact_secrets_of, value, found, scope)  # from every record of this execution, to its close
        return action_args.to_wire(self.crux_fn(ActionContext(self.crux_runtime.helpers, self, self.request), value))

    def run(self, *args: Any, **kwargs: Any) -> Any:
        runtime = self.crux_runtime
        request = self.request
        if execution.is_refused(getattr(request, "id", None)):  # a duplicate delivery: acknowledged, not run
            raise Ignore()
        hard_limit = (getattr(request, "timelimit", None) or (None, None))[0] or self.time_limit
        try:
            ex = execution.open_execution(
                runtime, task=self, request=request, name=self.crux_observability_name,
                primitive=self.crux_root_primitive, attributes=self.crux_attributes,
                deadline_at=time.time() + float(hard_limit) if hard_limit else None,
            )
        except Exception:  # telemetry never breaks user code: run without it
            log.warning("cruxcelery: could not open the execution of %s; running it untraced", self.name,
                        exc_info=True)
            return self._call(args, kwargs)
        reset = context.enter(ex.ctx, attach_otel=False)  # until task_postrun: chain links need it
        task_id = getattr(request, "id", None)
        found: list[Any] = []  # the secret values of the args: the extensions hear the close redacted too
        try:
            with flushing.budget(runtime.settings.flush_timeout_s), context.otel_attached(ex.ctx), \
                    ExitStack() as secrets_scope:  # closes after the flush below
                try:
                    result = self._call(args, kwargs, found, secrets_scope)
                except BaseException as exc:
                    failure = shown_failure(self, exc)  # what Celery stores, emits and logs of it
                    _settle(task_id, ex, found, exc)
                    if failure is exc:
                        raise
                else:
                    _settle(task_id, ex, found, None, result)
                    return result
                finally:
                    runtime.flush()
            raise failure  # a stand-in, raised outside the handler: the original is not its context
        finally:
            execution.defer_or_run(task_id, reset)


def shown_failure(task: Task[Any, Any], exc: BaseException) -> BaseException:
    """``exc`` redacted in place (its chain too), or the ``RedactedError`` standing in for it when
    its text still shows a secret. The original stays when Celery or the task acts on its type:
    ``Retry``, ``Reject``, ``Ignore``, time limits, ``autoretry_for`` and ``throws``."""
    try:
        shown = redaction.redact_exception(exc)
    except Exception:  # telemetry never breaks user code
        log.warning("cruxcelery: could not redact a task's exception", exc_info=True)
        return exc
    kept = (TaskPredicate, SoftTimeLimitExceeded, TimeLimitExceeded,
            *(getattr(task, "autoretry_for", None) or ()), *(getattr(task, "throws", None) or ()))
    return exc if isinstance(exc, kept) or not isinstance(exc, Exception) else shown


def flower_options(value: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with a summarised, redacted ``argsrepr``/``kwargsrepr`` of the validated
    argument (the message itself carries the real values); a caller's own reprs are kept."""
    if "argsrepr" in options and "kwargsrepr" in options:
        return options
    try:
        return {**action_args.reprs(value), **options}
    except Exception:  # never block a publish on a repr: fall back to hiding everything
        log.warning("cruxcelery: could not summarise the args of a task", exc_info=True)
        return {"argsrepr": "(…)", "kwargsrepr": "{…}", **options}


# -- secret values of an action's args --------------------------------------------------------------

_SECRET_TYPES = (SecretStr, SecretBytes)
_may_hold: dict[Any, bool] = {}


def may_hold_secrets(model: type[BaseModel] | None) -> bool:
    """Could a validated instance of ``model`` hold a ``SecretStr``? (Cached per model: models
    without secret fields cost nothing per action.)"""
    if model is None:
        return False
    known = _may_hold.get(model)
    if known is None:
        known = _may_hold[model] = _annotation_may_hold(model, set())
    return known


def _annotation_may_hold(annotation: Any, seen: set[int]) -> bool:
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if annotation is Any or annotation is object:
        return True
    if isinstance(annotation, type):
        if issubclass(annotation, _SECRET_TYPES):
            return True
        if issubclass(annotation, BaseModel):
            return any(_annotation_may_hold(field.annotation, seen) for field in annotation.model_fields.values())
        return False
    if isinstance(annotation, typing.TypeVar):
        return True
    return any(_annotation_may_hold(arg, seen) for arg in typing.get_args(annotation))


def secret_values(value: Any, depth: int = 0) -> Iterator[Any]:
    """The ``SecretStr``/``SecretBytes`` values in a validated args model (nested models, lists,
    tuples, sets and dict values included)."""
    if depth > 16:
        return
    if isinstance(value, _SECRET_TYPES):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_values(getattr(value, name, None), depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_values(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from secret_values(item, depth + 1)


def _redact_secrets_of(value: Any, found: list[Any], scope: ExitStack) -> None:
    found.extend(secret_values(value))
    if found:
        scope.enter_context(redaction.secrets(found))


def _settle(task_id: str | None, ex: execution.ActionExecution, found: list[Any], exc: BaseException | None,
            result: Any = None) -> None:
    """Close the execution's records and keep its one outcome for ``task_postrun``."""
    try:
        outcome = execution.close_execution(ex, exc, result)
    except Exception:
        log.warning("cruxcelery: telemetry step failed", exc_info=True)
        return
    execution.settle(task_id, outcome, tuple(found))


def _safely(fn: Callable[..., object], *args: Any) -> None:
    """Telemetry never breaks user code."""
    try:
        fn(*args)
    except Exception:
        log.warning("cruxcelery: telemetry step failed", exc_info=True)


def make_action(
    runtime: Runtime, fn: Callable[[ActionContext, Any], Any], *, name: str | None,
    observability_name: str | None, root_primitive: str | None, attributes: dict[str, Any] | None,
    args: type[BaseModel] | None, task_options: dict[str, Any],
) -> CruxTask:
    options: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True, **task_options}
    # invalid args never get better: no autoretry, whatever autoretry_for says
    options["dont_autoretry_for"] = (*tuple(options.get("dont_autoretry_for", ())), InvalidArgs)
    task_name = name or f"{fn.__module__}.{fn.__qualname__}"

    def run(self: CruxTask, *a: Any, **kw: Any) -> Any:
        return CruxTask.run(self, *a, **kw)

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    run.__module__ = fn.__module__
    app: Any = runtime.app  # celery's task() overloads cannot express the extra class attributes
    task: CruxTask = app.task(
        bind=True, base=CruxTask, name=task_name, shared=False, **options,
        crux_runtime=runtime, crux_fn=staticmethod(fn), crux_args_model=args,
        crux_observability_name=observability_name or task_name,
        crux_root_primitive=root_primitive or DEFAULT_ROOT_PRIMITIVE,
        crux_attributes=dict(attributes or {}),
    )(run)
    return task
