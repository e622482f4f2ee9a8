"""``ctx.crux.parallel``: an immediate composition, callables run in threads that keep the
action's context.

::

    found = ctx.crux.parallel("research fan-out", {
        "docs": lambda: search_docs({"query": q}),
        "issues": lambda: search_issues({"query": q}),
    }, max_workers=2)
    found["docs"], found["issues"]

One ``composition.parallel`` span (attributes ``kind: "parallel"``, ``childCount``) with one
``composition.branch`` child span per branch, named after it; whatever a branch records (tools,
generations, child actions) nests under its branch, in the action's run and trace. A
``composition.report`` artifact gives each branch's status and duration. Results come back as a
dict in the order given. A failing branch ends its span ``error`` with evidence; the others run to
the end, then ``ParallelError`` (``errors`` and the ``results`` that succeeded) is raised, or, with
``return_exceptions=True``, the exceptions are returned in place of results.

Not durable by itself: inside a flow handler, a crash or resume runs every branch again. Wrap it in
``scope.step("fan-out", lambda: ctx.crux.parallel(...))`` and the step's result is recorded once
and replayed after that. Branches publish child actions plainly (``run_action`` inside a branch
returns an ``AsyncResult``, never a durable step child)."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from cruxcelery.agents.recording import end_span, open_span, safely
from cruxcelery.core import context
from cruxcelery.errors import CruxError
from cruxcelery.telemetry.spans import CruxSpan

__all__ = ["ParallelError", "parallel"]

COMPOSITION = "composition.parallel"
BRANCH = "composition.branch"
MAX_THREADS = 32


class ParallelError(CruxError):
    """One or more branches of ``parallel`` failed: ``errors`` by branch name, and the ``results``
    of the branches that succeeded. The first failure is the ``__cause__``."""

    def __init__(self, label: str, errors: dict[str, BaseException], results: dict[str, Any]) -> None:
        names = ", ".join(f"{name} ({type(exc).__name__}: {exc})" for name, exc in errors.items())
        super().__init__(f"{label}: {len(errors)} of {len(errors) + len(results)} branches failed: {names}")
        self.label = label
        self.errors = errors
        self.results = results


@dataclass
class _Outcome:
    name: str
    value: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0


def parallel(label: str, branches: dict[str, Callable[[], Any]], *, max_workers: int | None = None,
             return_exceptions: bool = False) -> dict[str, Any]:
    if not branches:
        return {}
    ctx = context.current()
    recording = ctx is not None and ctx.runtime.recorder.enabled
    span = safely(open_span, ctx, label, COMPOSITION, attributes={
        "kind": "parallel", "childCount": len(branches), "branches": list(branches)[:200],
    }) if recording and ctx is not None else None
    started = time.time()
    workers = max(1, min(max_workers or len(branches), len(branches), MAX_THREADS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crux-parallel") as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, _branch, ctx if recording else None, span, name, fn)
            for name, fn in branches.items()
        ]
        outcomes = [future.result() for future in futures]
    errors = {o.name: o.error for o in outcomes if o.error is not None}
    results = {o.name: o.value for o in outcomes if o.error is None}
    if span is not None:
        safely(span.artifact, "composition.report", _report(label, outcomes, started))
    if errors and not return_exceptions:
        failure = ParallelError(label, errors, results)
        failure.__cause__ = next(iter(errors.values()))
        if span is not None:
            safely(end_span, span, "error", failure)
        raise failure
    if span is not None:
        safely(end_span, span, "error" if errors else "ok", None)
    return {o.name: o.error if o.error is not None else o.value for o in outcomes}


def _branch(ctx: context.ActiveContext | None, composition: CruxSpan | None, name: str,
            fn: Callable[[], Any]) -> _Outcome:
    started = time.monotonic()
    outcome = _Outcome(name)
    span = safely(open_span, ctx, name, BRANCH, attributes={"branch": name},
                  parent=composition.ref if composition is not None else None) if ctx is not None else None
    try:
        if span is not None and ctx is not None:
            with context.activate(replace(ctx, span=span, parent=span.ref)):
                outcome.value = fn()
        else:
            outcome.value = fn()
    except BaseException as exc:
        outcome.error = exc
        if span is not None:
            status, error = context.status_for(exc)
            safely(end_span, span, status, error)
    else:
        if span is not None:
            safely(end_span, span, "ok")
    outcome.duration_ms = round((time.monotonic() - started) * 1000.0, 3)
    return outcome


def _report(label: str, outcomes: list[_Outcome], started: float) -> dict[str, Any]:
    failed = any(o.error is not None for o in outcomes)
    return {
        "kind": "composition.report", "compositionType": "parallel", "label": label,
        "status": "error" if failed else "success",
        "wallTimeMs": round((time.time() - started) * 1000.0, 3),
        "serialTimeMs": round(sum(o.duration_ms for o in outcomes), 3),
        "branches": [{"id": o.name, "status": "error" if o.error is not None else "success",
                      "durationMs": o.duration_ms,
                      **({"error": type(o.error).__name__} if o.error is not None else {})} for o in outcomes],
    }
