"""Tool calls a model requested, per action execution, until that execution ends.

``gen.tool_requested(call_id, ...)`` notes a request; a tool that runs with that call id under
the same execution (in-process, in a ``parallel`` branch, or published with ``run_tool``) marks it
executed. When the execution ends (``settle``, from the agents extension at ``task_postrun``),
every request nothing executed becomes a finished ``tool.call`` span under the generation that
asked for it, with ``executed: false``: the model asked, the code did not run it (an interactive
or stop-condition tool, or a call the agent loop chose to drop).

The execution is the Celery task being run (``begin`` / ``end`` at its prerun and postrun: a flow
handler's task, a ``parallel`` branch's action); a context with no Celery execution
(``with_context`` in a thread) settles when the process ends (``settle_all``) or when the bound of
open executions pushes it out."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from cruxcelery.agents.recording import safely, whole_span
from cruxcelery.core.context import ActiveContext

MAX_OPEN = 512  # executions tracked at once (oldest settled first when exceeded)
MAX_CALLS = 1000  # requests kept per execution


@dataclass
class _Request:
    call_id: str
    name: str
    generation_span_id: str
    requested_at: float
    ctx: ActiveContext
    attributes: dict[str, Any]


@dataclass
class _Ledger:
    pending: dict[str, _Request] = field(default_factory=dict)
    executed: set[str] = field(default_factory=set)


_lock = threading.Lock()
_open: OrderedDict[str, _Ledger] = OrderedDict()
_execution: ContextVar[str | None] = ContextVar("cruxcelery_agents_execution", default=None)
_tokens: dict[str, Token[str | None]] = {}


def begin(task_id: str | None) -> None:
    """A Celery execution starts in this context (``task_prerun``)."""
    if task_id:
        _tokens[task_id] = _execution.set(task_id)


def end(task_id: str | None) -> None:
    """It ended (``task_postrun``): restore what was current before it."""
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        try:
            _execution.reset(token)
        except ValueError:  # reset from another context: clear rather than leak
            _execution.set(None)


def key_of(ctx: ActiveContext) -> str:
    """One ledger per Celery execution (the task being run, else the context's), else per segment."""
    task_id = _execution.get() or ctx.task_id
    return f"task:{task_id}" if task_id else f"segment:{ctx.segment.segment_id}"


def requested(ctx: ActiveContext, generation_span_id: str, call_id: str, name: str,
              attributes: dict[str, Any] | None = None) -> None:
    overflow: list[_Ledger] = []
    with _lock:
        ledger = _open.get(key_of(ctx))
        if ledger is None:
            ledger = _open[key_of(ctx)] = _Ledger()
            while len(_open) > MAX_OPEN:
                overflow.append(_open.popitem(last=False)[1])
        if call_id not in ledger.executed and len(ledger.pending) < MAX_CALLS:
            ledger.pending[call_id] = _Request(call_id, name, generation_span_id, time.time(), ctx,
                                               dict(attributes or {}))
    for old in overflow:
        _emit(old)


def executed(ctx: ActiveContext, call_id: str | None) -> None:
    if not call_id:
        return
    with _lock:
        ledger = _open.get(key_of(ctx))
        if ledger is None:
            ledger = _open[key_of(ctx)] = _Ledger()
        ledger.pending.pop(call_id, None)
        if len(ledger.executed) < MAX_CALLS:
            ledger.executed.add(call_id)


def settle(task_id: str | None) -> int:
    """The execution ``task_id`` ended: record what it never executed. Returns how many."""
    if not task_id:
        return 0
    with _lock:
        ledger = _open.pop(f"task:{task_id}", None)
    return _emit(ledger) if ledger is not None else 0


def settle_all() -> int:
    with _lock:
        ledgers = list(_open.values())
        _open.clear()
    return sum(_emit(ledger) for ledger in ledgers)


def _emit(ledger: _Ledger) -> int:
    for request in ledger.pending.values():
        safely(
            whole_span, request.ctx, request.name, "tool.call", parent_span_id=request.generation_span_id,
            started_at=request.requested_at, ended_at=request.requested_at, status="ok",
            attributes={"toolName": request.name, "toolCallId": request.call_id, "executed": False,
                        **request.attributes},
        )
    return len(ledger.pending)
