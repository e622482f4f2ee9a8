"""``@crux.tool``: functions an agent calls, recorded as ``tool.call`` spans.

::

    @crux.tool(name="search_docs", description="Search the docs", args=SearchArgs)
    def search_docs(ctx: ToolContext, args: SearchArgs) -> list[str]:
        ...

    hits = search_docs({"query": "leases"}, call_id=call.id)           # in-process, inside an action
    hits = ctx.crux.run_tool(search_docs, {"query": "leases"}, call_id=call.id)   # the same

    @crux.tool(name="fetch_page", args=FetchArgs, as_task=True)       # a Celery task of its own
    def fetch_page(ctx: ToolContext, args: FetchArgs) -> str: ...

    ctx.crux.run_tool(fetch_page, {"url": url}, call_id=call.id)       # -> AsyncResult (durable in a step)

Every execution is one ``tool.call`` span named after the tool, with ``toolName``, ``toolCallId``
(the model's id for the call, when given), ``tool.args`` and ``tool.result`` artifacts (the
application's own values, recorded like a flow step's output: JSON-safe previews, secrets
redacted), ``ctx.crux`` inside, and a bounded flush after it, so nested records are out before the
result returns to the agent loop. A failing tool records ``phase: "tool.execute"``,
``errorKind: "execute_error"``, the ``exception`` event and the ``error.stack`` / ``error.raw``
artifacts, flushes, and re-raises; arguments that fail the tool's model record
``phase: "tool.validate"``, ``errorKind: "invalid_args"`` and raise ``InvalidArgs``. The OTel twin is
``execute_tool {name}`` with ``gen_ai.tool.name`` and ``gen_ai.tool.call.id``. A task tool's span is
opened in the worker that runs its body; the boundary and the task's action span around it are
folded infrastructure."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, Field

from cruxcelery.agents import ledger
from cruxcelery.agents.recording import end_span, flush_after, open_span, safely
from cruxcelery.core import args as action_args
from cruxcelery.core import context, registry
from cruxcelery.core.actions import CruxTask, make_action
from cruxcelery.core.context import ActionContext
from cruxcelery.core.helpers import CruxHelpers
from cruxcelery.errors import CruxError, InvalidArgs
from cruxcelery.telemetry import genai
from cruxcelery.telemetry.spans import DETAIL, CruxSpan

if TYPE_CHECKING:
    from celery.result import AsyncResult

    from cruxcelery.core.runtime import Runtime

__all__ = ["Tool", "ToolContext", "ToolInvocation", "make_tool", "run_tool"]

R = TypeVar("R")
PRIMITIVE = "tool.call"
EXECUTE_ERROR = {"phase": "tool.execute", "errorKind": "execute_error"}
INVALID_ARGS = {"phase": "tool.validate", "errorKind": "invalid_args"}


@dataclass(frozen=True)
class ToolContext:
    """The first argument of a tool: ``ctx.crux`` helpers, the tool's name and the call id."""

    crux: CruxHelpers
    tool_name: str
    call_id: str | None = None

    @property
    def run_id(self) -> str | None:
        active = context.current()
        return active.run.run_id if active else None

    @property
    def flow_id(self) -> str | None:
        active = context.current()
        return active.flow_id if active else None


class ToolInvocation(BaseModel):
    """What a task tool's message carries: the arguments (validated again in the worker by the
    tool's model) and the model's call id."""

    arguments: Any = None
    call_id: str | None = Field(default=None, max_length=256)


class Tool(Generic[R]):
    """A tool: call it like a function (in-process, recorded under the active context), or pass it
    to ``ctx.crux.run_tool``. ``definition`` is its function schema for a model's tool list."""

    def __init__(self, fn: Callable[[ToolContext, Any], R], *, name: str, description: str,
                 args_model: type[BaseModel] | None) -> None:
        self.fn = fn
        self.name = name
        self.description = description
        self.args_model = args_model
        self.task: CruxTask | None = None  # set for as_task tools

    @property
    def as_task(self) -> bool:
        return self.task is not None

    def __call__(self, args: Any = None, /, *, call_id: str | None = None, **kwargs: Any) -> R:
        return execute(self, () if args is None else (args,), kwargs, call_id)

    @property
    def definition(self) -> dict[str, Any]:
        """``{"type": "function", "function": {name, description, parameters}}`` (the JSON schema
        of the args model): what OpenAI-style tool lists take."""
        parameters = self.args_model.model_json_schema() if self.args_model else {"type": "object"}
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": parameters}}

    def __repr__(self) -> str:
        return f"<Tool {self.name}{' (task)' if self.as_task else ''}>"


def execute(tool: Tool[R], args: tuple[Any, ...], kwargs: dict[str, Any], call_id: str | None) -> R:
    """Run ``tool`` in this process as a ``tool.call`` span under the active context (untraced
    without one)."""
    ctx = context.current()
    runtime = ctx.runtime if ctx is not None else registry.current()
    tool_ctx = ToolContext(runtime.helpers if runtime is not None else CruxHelpers(), tool.name, call_id)
    span = safely(_open, ctx, tool, call_id) if ctx is not None and ctx.runtime.recorder.enabled else None
    if span is None or ctx is None:
        return tool.fn(tool_ctx, action_args.coerce(tool.args_model, args, kwargs, f"tool {tool.name}"))
    try:
        value = action_args.coerce(tool.args_model, args, kwargs, f"tool {tool.name}")
    except InvalidArgs as exc:
        _fail(ctx, span, exc, INVALID_ARGS)
        raise
    safely(span.artifact, "tool.args", action_args.to_wire(value))
    try:
        with context.activate(replace(ctx, span=span, parent=span.ref)):
            result = tool.fn(tool_ctx, value)
    except BaseException as exc:
        status, error = context.status_for(exc)
        if error is None:  # flow control (a suspend) passing through: not a tool failure
            safely(end_span, span, status)
        else:
            _fail(ctx, span, error, EXECUTE_ERROR)
        raise
    safely(span.artifact, "tool.result", action_args.to_wire(result))
    safely(end_span, span, "ok")
    flush_after(ctx)
    return result


def _open(ctx: context.ActiveContext, tool: Tool[Any], call_id: str | None) -> CruxSpan:
    attributes: dict[str, Any] = {"toolName": tool.name}
    if call_id:
        attributes["toolCallId"] = call_id
        ledger.executed(ctx, call_id)
    return open_span(ctx, tool.name, PRIMITIVE, attributes=attributes, otel_name=genai.tool_name(tool.name),
                     otel_extra=genai.tool_attributes(tool.name, call_id, tool.description))


def _fail(ctx: context.ActiveContext, span: CruxSpan, error: BaseException, attributes: dict[str, str]) -> None:
    safely(end_span, span, "error", error, attributes=attributes,
           otel_extra={genai.ERROR_TYPE: type(error).__qualname__})
    flush_after(ctx)


def run_tool(helpers: CruxHelpers, tool: Tool[Any], args: Any = None, *, call_id: str | None = None,
             label: str | None = None, timeout_s: float | None = None, **options: Any) -> Any:
    """In-process tools run now and return their result; task tools are published across a
    boundary (validated here first) and return the child's ``AsyncResult``, or inside a flow
    step its result, durably."""
    if not isinstance(tool, Tool):
        raise CruxError(f"run_tool takes a @crux.tool, not {type(tool).__name__}")
    if tool.task is None:
        if options:
            raise CruxError(f"tool {tool.name} runs in-process: Celery options {sorted(options)} do not apply")
        return execute(tool, () if args is None else (args,), {}, call_id)
    value = action_args.coerce(tool.args_model, () if args is None else (args,), {}, f"tool {tool.name}")
    ctx = context.current()
    if ctx is not None:
        safely(ledger.executed, ctx, call_id)
    invocation = ToolInvocation(arguments=action_args.to_wire(value, reveal=True), call_id=call_id)
    result: AsyncResult[Any] = helpers.run_action(label or tool.name, tool.task, invocation, timeout_s=timeout_s,
                                                  **options)
    return result


def make_tool(runtime: Runtime, fn: Callable[[ToolContext, Any], R], *, name: str | None,
              description: str | None, args: type[BaseModel] | None, as_task: bool,
              task_options: dict[str, Any]) -> Tool[R]:
    tool_name = name or fn.__name__
    doc = inspect.getdoc(fn) or ""
    tool: Tool[R] = Tool(fn, name=tool_name, description=description or doc.split("\n\n")[0].strip(),
                         args_model=args)
    if as_task:
        task_name = task_options.pop("task_name", None) or f"{fn.__module__}.{fn.__qualname__}"

        def body(ctx: ActionContext, invocation: ToolInvocation) -> Any:
            return execute(tool, (invocation.arguments,), {}, invocation.call_id)

        body.__name__, body.__doc__, body.__module__ = fn.__name__, fn.__doc__, fn.__module__
        tool.task = make_action(
            runtime, body, name=task_name, observability_name=tool_name, root_primitive="runtime.celery.task",
            attributes={**DETAIL, "tool": tool_name}, args=ToolInvocation, task_options=task_options,
        )
    elif task_options:
        raise CruxError(f"tool {tool_name}: Celery options {sorted(task_options)} need as_task=True")
    return tool
