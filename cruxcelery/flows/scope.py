"""``FlowScope``: what a flow handler works with. Completed steps replay from the snapshot;
suspend / wait_until follow Crux's order: replay a delivered signal, else expire, else take a
pending signal, else suspend."""

from __future__ import annotations

import inspect
import logging
import time
import types
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from cruxcelery.core import scheduling
from cruxcelery.core.context import activate, status_for
from cruxcelery.core.extensions import ChildCall
from cruxcelery.core.publishing import publish, send_now
from cruxcelery.flows import durations
from cruxcelery.flows.codec import lossless
from cruxcelery.flows.errors import (
    ChildFailed,
    DuplicateStep,
    FlowCancelled,
    FlowControl,
    FlowDeterminismError,
    FlowError,
    FlowExpired,
    FlowSuspended,
    FlowWaiting,
    StepFailed,
)
from cruxcelery.flows.guard import interruptible
from cruxcelery.flows.results import Retry
from cruxcelery.flows.routing import routing
from cruxcelery.flows.run import FlowRun
from cruxcelery.flows.snapshot import StepRecord, Waiting
from cruxcelery.flows.store.keys import child_key, step_id_for, wait_occurrence
from cruxcelery.telemetry import ids
from cruxcelery.telemetry.preview import json_safe

A = TypeVar("A", bound=BaseModel)
_ONE_ATTEMPT = Retry(attempts=1)
log = logging.getLogger("cruxcelery.flows")


class FlowScope(Generic[A]):
    def __init__(self, run: FlowRun, input_model: A) -> None:
        self._run = run
        self.input = input_model
        self.results: dict[str, Any] = {}
        self._labels: list[str] = []
        self._occurrences: dict[str, int] = {}

    @property
    def flow_id(self) -> str:
        return self._run.flow_id

    def step_key(self, label: str) -> str:
        """An idempotency key for external calls made by step ``label`` of this flow."""
        return f"{self.flow_id}:{step_id_for(label)}"

    def cancel(self, reason: str | None = None) -> None:
        """End the flow as cancelled. Never returns. A ``reason`` that is not a string (or one
        JSON cannot carry) raises ``FlowError`` instead: the flow fails with it, unless caught."""
        if reason is not None and not isinstance(reason, str):
            raise FlowError(f"a cancel reason must be a string or None, not {type(reason).__name__}")
        raise FlowCancelled(reason if reason is None else lossless("the cancel reason", reason))

    # -- steps -----------------------------------------------------------------------------------
    def step(self, label: str, fn: Callable[..., Any], *, retry: Retry | None = None,
             fallback: Callable[[], Any] | None = None) -> Any:
        """Run ``fn`` once for the life of the flow and return its JSON output (replayed later).
        ``ctx.crux.run_action`` inside ``fn`` is durable: the flow waits for the child without
        holding a worker and the child's result becomes the step's output."""
        snap = self._run.snap
        self._check_order(label)
        done = snap.completed_steps.get(label)
        if done is not None:
            self.results[label] = done.output
            return done.output
        policy = retry or _ONE_ATTEMPT
        attempt, pending, in_fallback = 1, None, False
        waiting = snap.waiting
        if waiting is not None and waiting.kind == "child" and waiting.name == label:
            attempt, in_fallback = max(waiting.occurrence, 1), waiting.fallback
            pending = self._run.store.children.get(self.flow_id, waiting.child_key)
            if pending is None:
                raise FlowWaiting()  # a resume before the child finished: nothing to do yet
        started = time.time()
        if not in_fallback:
            error: BaseException | None = None
            child_failed = False
            while True:
                try:
                    value = self._attempt(label, fn, attempt, pending, policy, child_failed)
                except FlowControl:
                    raise
                except Exception as exc:
                    error, child_failed, pending = exc, isinstance(exc, ChildFailed), None
                    if attempt >= policy.attempts:
                        break
                    attempt += 1
                    continue
                return self._complete(label, value, attempt, started)
            if fallback is None:
                raise StepFailed(f"step {label!r} failed after {attempt} attempt(s): {error}") from error
        if fallback is None:
            raise StepFailed(f"step {label!r} waited on a fallback child, but the step has no fallback now")
        value = self._attempt(label, lambda: fallback(), attempt, pending, _ONE_ATTEMPT, False, fallback=True)
        return self._complete(label, value, attempt, started)

    def _attempt(self, label: str, fn: Callable[..., Any], attempt: int, pending: dict[str, Any] | None,
                 policy: Retry, after_child_failure: bool, *, fallback: bool = False) -> Any:
        """One attempt in its own ``flow.step`` span; returns the JSON output or raises."""
        run = self._run
        if pending is None and child_key(label, attempt, fallback) in run.snap.child_tasks:
            # the attempt published its child, which may have ended before ``waiting`` was saved (a
            # crash between the two): its stored outcome is the attempt's, the child never runs again
            pending = run.store.children.get(self.flow_id, child_key(label, attempt, fallback))
        delay = policy.delay_before(attempt) if attempt > 1 else 0.0
        if delay and pending is None and not after_child_failure:
            time.sleep(delay)  # in-process retries wait here; durable children wait in the broker
        step_id = step_id_for(label)
        span = run.segment.start_span(
            label, "flow.step", parent=run.span.ref, flow_id=self.flow_id, step_id=step_id,
            attributes={"flowId": self.flow_id, "stepId": step_id, "stepLabel": label, "attempt": attempt,
                        **({"fallback": True} if fallback else {})},
        )

        def durable_child(call: ChildCall) -> Any:
            child_label, task, child_args, opts = call.label, call.task, call.args, dict(call.options)
            later = after_child_failure and delay > 0
            if later:
                opts["countdown"] = delay
            key = child_key(label, attempt, fallback)
            # the child's id is recorded before it is published (only that task reports into the
            # step); a re-run of the attempt (a crash before ``waiting`` was saved) publishes the
            # same task again, which runs once (``child_runs``)
            task_id = run.snap.child_tasks.get(key) or str(opts.get("task_id") or uuid.uuid4())
            opts["task_id"] = task_id
            if run.snap.child_tasks.get(key) != task_id:
                run.save(child_tasks={**run.snap.child_tasks, key: task_id})
            deferred = later and delay > scheduling.hop_s(run.ctx.runtime) and run.ctx.runtime.deferred is not None
            result = interruptible(lambda: publish(
                replace(run.ctx, span=span, parent=span.ref), child_label, task, child_args, opts,
                kind="task", envelope_fields={"flow_step": key},
                sender=scheduling.send_deferred if deferred else send_now,
            ))
            run.save(status="waiting", suspended_at=label,
                     waiting=Waiting(kind="child", name=label, child_task_id=result.id, occurrence=attempt,
                                     fallback=fallback))
            raise FlowWaiting()

        try:
            if pending is not None:
                if not pending.get("ok"):
                    raise ChildFailed(str(pending.get("error", {}).get("message", "child task failed")))
                value = pending.get("output")
            else:
                run.mark_running()
                with activate(replace(run.ctx, span=span, parent=span.ref)), routing(durable_child):
                    value = _call_step(fn, self)
            output = lossless(f"the output of step {label!r}", value)
        except BaseException as exc:
            span.end(*status_for(exc))
            raise
        span.artifact("output", output)
        span.end("ok")
        return output

    def _complete(self, label: str, output: Any, attempts: int, started: float) -> Any:
        run = self._run
        steps = dict(run.snap.completed_steps)
        steps[label] = StepRecord(output=output, duration_ms=round((time.time() - started) * 1000, 3),
                                  attempts=attempts)
        step_id = step_id_for(label)
        children = {key: task for key, task in run.snap.child_tasks.items() if key.rsplit(".", 1)[0] != step_id}
        run.save(completed_steps=steps, step_order=[*run.snap.step_order, label], status="running",
                 waiting=None, suspended_at=None, child_tasks=children)
        self.results[label] = output
        return output

    def _check_order(self, label: str) -> None:
        if label in self._labels:
            raise DuplicateStep(f"flow {self._run.snap.name!r} uses the step label {label!r} twice")
        index = len(self._labels)
        self._labels.append(label)
        order = self._run.snap.step_order
        recorded = order[index] if index < len(order) else None
        if label in self._run.snap.completed_steps and recorded != label:
            raise FlowDeterminismError(
                f"step {label!r} replayed at position {index}, where the flow recorded "
                f"{recorded!r}: the flow's code changed between executions")
        if label not in self._run.snap.completed_steps and recorded is not None:
            raise FlowDeterminismError(
                f"step {label!r} runs at position {index}, where the flow recorded {recorded!r}: "
                "the flow's code changed between executions")

    # -- waits -----------------------------------------------------------------------------------
    def _occurrence(self, name: str) -> tuple[int, str]:
        count = self._occurrences.get(name, 0)
        self._occurrences[name] = count + 1
        return count, wait_occurrence(name, count)

    def _timeout_at(self, name: str, occurrence: int, timeout: str | float | None) -> int | None:
        waiting = self._run.snap.waiting
        if waiting is not None and waiting.name == name and waiting.occurrence == occurrence:
            return waiting.timeout_at
        seconds = durations.seconds(timeout)
        return None if seconds is None else int((time.time() + seconds) * 1000)

    def _expire_if_due(self, name: str, timeout_at: int | None,
                       on_expired: Callable[[Any], Any] | None) -> None:
        if timeout_at is None or time.time() * 1000 < timeout_at:
            return
        if on_expired is not None:
            on_expired(self._run.snap)
        raise FlowExpired(name)

    def suspend(self, name: str, schema: type[BaseModel] | None = None, timeout: str | float | None = None,
                on_expired: Callable[[Any], Any] | None = None) -> Any:
        """Wait for the signal ``name``; returns its payload (a ``schema`` / declared model
        instance when one is known). Signals sent earlier are buffered, each delivered once."""
        run = self._run
        occurrence, key = self._occurrence(name)
        model = schema or run.signals.get(name)
        if key in run.delivered:
            return _parse(model, run.delivered[key])
        timeout_at = self._timeout_at(name, occurrence, timeout)
        self._expire_if_due(name, timeout_at, on_expired)
        while True:
            found, payload = run.store.signals.take(self.flow_id, name, key)
            if not found:
                break
            try:
                value = _parse(model, payload)
            except ValidationError as exc:
                rejected = {"name": name, "payload": json_safe(payload), "message": str(exc),
                            "errors": json_safe(exc.errors(include_url=False)), "at": ids.iso_ms(time.time())}
                run.save(rejected_signals=[*run.snap.rejected_signals, rejected])
                run.store.signals.forget_delivered(self.flow_id, key)
                continue
            run.delivered[key] = payload
            run.save(waiting=None, status="running", suspended_at=None)
            return value
        self._suspend_here(Waiting(kind="signal", name=name, timeout_at=timeout_at, occurrence=occurrence,
                                   schema_=model.model_json_schema() if model else None))

    def wait_until(self, name: str, condition: Callable[[], bool], *, every: str | float | None = None,
                   timeout: str | float | None = None, on_expired: Callable[[Any], Any] | None = None) -> None:
        """Suspend until ``condition()`` holds: re-checked on every resume, and every ``every``
        seconds by a timer when given."""
        run = self._run
        occurrence, key = self._occurrence(name)
        if key in run.delivered:
            return
        timeout_at = self._timeout_at(name, occurrence, timeout)
        if condition():
            run.delivered[key] = True
            run.save(delivered_signals={**run.snap.delivered_signals, key: True}, waiting=None,
                     status="running", suspended_at=None)
            return
        self._expire_if_due(name, timeout_at, on_expired)
        self._suspend_here(Waiting(kind="condition", name=name, timeout_at=timeout_at, occurrence=occurrence,
                                   every_s=durations.seconds(every)))

    def _suspend_here(self, waiting: Waiting) -> None:
        run = self._run
        attributes: dict[str, Any] = {"suspendPoint": waiting.name, "flowId": self.flow_id,
                                      "waitKind": waiting.kind}
        if waiting.timeout_at is not None:
            attributes["timeout"] = ids.iso_ms(waiting.timeout_at / 1000)
        span = run.segment.start_span(waiting.name, "flow.suspension", parent=run.span.ref,
                                      flow_id=self.flow_id, attributes=attributes)
        span.end("suspended")
        # timers first, armed for the version the save will write: a crash between the two leaves
        # timers that are stale (dropped when due) on a flow the sweeper resumes, never a
        # suspended flow without its timeout
        armed = run.snap.model_copy(update={"waiting": waiting, "version": run.snap.version + 1})
        interruptible(lambda: run.timers.arm_for(armed))
        run.save(status="suspended", suspended_at=waiting.name, waiting=waiting)
        raise FlowSuspended(waiting.name)


def _call_step(fn: Callable[..., Any], scope: FlowScope[Any]) -> Any:
    """Steps may be ``() -> T`` or ``(scope) -> T`` (a bound method counts its own ``self`` out)."""
    return fn(scope) if _wants_scope(fn) else fn()


def _wants_scope(fn: Callable[..., Any]) -> bool:
    if isinstance(fn, types.FunctionType) and not fn.__dict__:  # no ``__wrapped__`` for inspect to follow
        # the fast path, plain functions and lambdas: positional parameters without a default
        return fn.__code__.co_argcount - len(fn.__defaults__ or ()) == 1
    func = getattr(fn, "__func__", None)
    if isinstance(fn, types.MethodType) and isinstance(func, types.FunctionType) and not func.__defaults__:
        return func.__code__.co_argcount == 2  # a bound method: its self, then the scope
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


def _parse(model: type[BaseModel] | None, payload: Any) -> Any:
    return payload if model is None else model.model_validate(payload)
