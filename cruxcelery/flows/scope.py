"""``FlowScope``: what a flow handler works with. Completed steps replay from the snapshot;
suspend / wait_until follow Crux's order: replay a delivered signal, else expire, else take a
pending signal, else suspend."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from cruxcelery import args as action_args
from cruxcelery.context import activate
from cruxcelery.flows import durations
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
from cruxcelery.flows.keys import NAME_PATTERN
from cruxcelery.flows.results import Retry
from cruxcelery.flows.run import FlowRun
from cruxcelery.flows.snapshot import StepRecord, Waiting
from cruxcelery.publishing import publish
from cruxcelery.telemetry import ids
from cruxcelery.telemetry.preview import json_safe

A = TypeVar("A", bound=BaseModel)
STEP_ID_PATTERN = re.compile(NAME_PATTERN)
_ONE_ATTEMPT = Retry(attempts=1)


def step_id_for(label: str) -> str:
    """A key-safe id for a step label: the label itself when it is one, else a stable hash."""
    if STEP_ID_PATTERN.match(label) and len(label) <= 100:
        return label
    return "s-" + hashlib.sha1(label.encode("utf-8")).hexdigest()[:20]


def _json_value(label: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(action_args.to_wire(value)))
    except (TypeError, ValueError) as exc:
        raise FlowError(f"step {label!r} returned a value that is not JSON: {exc}") from None


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
        """End the flow as cancelled. Never returns."""
        raise FlowCancelled(reason)

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
        attempt, pending = 1, None
        waiting = snap.waiting
        if waiting is not None and waiting.kind == "child" and waiting.name == label:
            attempt = max(waiting.occurrence, 1)
            pending = self._run.store.get_child_result(self.flow_id, f"{step_id_for(label)}.{attempt}")
            if pending is None:
                raise FlowWaiting()  # a resume before the child finished: nothing to do yet
        started = time.time()
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
        if fallback is not None:
            value = self._attempt(label, lambda: fallback(), attempt, None, _ONE_ATTEMPT, False,
                                  fallback=True)
            return self._complete(label, value, attempt, started)
        raise StepFailed(f"step {label!r} failed after {attempt} attempt(s): {error}") from error

    def _attempt(self, label: str, fn: Callable[..., Any], attempt: int, pending: dict[str, Any] | None,
                 policy: Retry, after_child_failure: bool, *, fallback: bool = False) -> Any:
        """One attempt in its own ``flow.step`` span; returns the JSON output or raises."""
        run = self._run
        delay = policy.delay_before(attempt) if attempt > 1 else 0.0
        if delay and pending is None and not after_child_failure:
            time.sleep(delay)  # in-process retries wait here; durable children wait in the broker
        step_id = step_id_for(label)
        span = run.segment.start_span(
            label, "flow.step", parent=run.span.ref, flow_id=self.flow_id, step_id=step_id,
            attributes={"flowId": self.flow_id, "stepId": step_id, "stepLabel": label, "attempt": attempt,
                        **({"fallback": True} if fallback else {})},
        )

        def durable_child(child_label: str, task: Any, child_args: Any, options: dict[str, Any]) -> Any:
            opts = dict(options)
            if after_child_failure and delay:
                opts.setdefault("countdown", delay)
            result = publish(
                replace(run.ctx, span=span, parent=span.ref), child_label, task, child_args, opts,
                kind="task", envelope_fields={"flow_step": f"{step_id}.{attempt}"},
            )
            run.save(status="waiting", suspended_at=label,
                     waiting=Waiting(kind="child", name=label, child_task_id=result.id, occurrence=attempt))
            raise FlowWaiting()

        try:
            if pending is not None:
                if not pending.get("ok"):
                    raise ChildFailed(str(pending.get("error", {}).get("message", "child task failed")))
                value = pending.get("output")
            else:
                run.mark_running()
                with activate(replace(run.ctx, span=span, parent=span.ref, step_hook=durable_child)):
                    value = fn(self) if _wants_scope(fn) else fn()
            output = _json_value(label, value)
        except BaseException as exc:
            status = getattr(exc, "crux_span_status", None)
            span.end(status if isinstance(status, str) else "error", None if status else exc)
            raise
        span.artifact("output", output)
        span.end("ok")
        return output

    def _complete(self, label: str, output: Any, attempts: int, started: float) -> Any:
        run = self._run
        steps = dict(run.snap.completed_steps)
        steps[label] = StepRecord(output=output, duration_ms=round((time.time() - started) * 1000, 3),
                                  attempts=attempts)
        run.save(completed_steps=steps, step_order=[*run.snap.step_order, label], status="running",
                 waiting=None, suspended_at=None)
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
        return count, f"{name}#{count}"

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
        if key in run.snap.delivered_signals:
            return _parse(model, run.snap.delivered_signals[key])
        timeout_at = self._timeout_at(name, occurrence, timeout)
        self._expire_if_due(name, timeout_at, on_expired)
        while True:
            found, payload = run.store.pop_signal(self.flow_id, name)
            if not found:
                break
            try:
                value = _parse(model, payload)
            except ValidationError as exc:
                rejected = {"name": name, "payload": json_safe(payload), "message": str(exc),
                            "at": ids.iso_ms(time.time())}
                run.save(rejected_signals=[*run.snap.rejected_signals, rejected])
                continue
            run.save(delivered_signals={**run.snap.delivered_signals, key: payload}, waiting=None,
                     status="running", suspended_at=None)
            return value
        self._suspend_here(Waiting(kind="signal", name=name, timeout_at=timeout_at, occurrence=occurrence,
                                   schema_=model.model_json_schema() if model else None))

    def wait_until(self, name: str, condition: Callable[[], bool], *, every: str | float | None = None,
                   timeout: str | float | None = None, on_expired: Callable[[Any], Any] | None = None) -> None:
        """Suspend until ``condition()`` holds: re-checked on every resume, and every ``every``
        seconds by a timer when given."""
        run = self._run
        occurrence, key = self._occurrence(name)
        if key in run.snap.delivered_signals:
            return
        timeout_at = self._timeout_at(name, occurrence, timeout)
        if condition():
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
        run.save(status="suspended", suspended_at=waiting.name, waiting=waiting)
        run.timers.arm_for(run.snap)
        raise FlowSuspended(waiting.name)


def _wants_scope(fn: Callable[..., Any]) -> bool:
    """Steps may be ``() -> T`` or ``(scope) -> T``."""
    code = getattr(fn, "__code__", None)
    if code is None or getattr(fn, "__defaults__", None) is not None:
        return _wants_scope_slow(fn)
    return bool(code.co_argcount == 1 and not getattr(fn, "__self__", None))


def _wants_scope_slow(fn: Callable[..., Any]) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


def _parse(model: type[BaseModel] | None, payload: Any) -> Any:
    return payload if model is None else model.model_validate(payload)
