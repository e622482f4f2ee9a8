"""``Crux(app)``: the composition root. It builds the core runtime and plugs in, through the
extension seam and in this order: telemetry delivery, durable flows and agents.

They register when ``Crux(app)`` is built, so every worker of the app delivers telemetry, reports
durable children, sweeps timers and recovers flows, whatever modules it imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from pydantic import BaseModel

from cruxcelery.agents.extension import AgentsExtension
from cruxcelery.agents.tools import Tool, ToolContext, make_tool
from cruxcelery.core.runtime import Runtime
from cruxcelery.delivery.extension import install as install_delivery
from cruxcelery.flows.extension import FlowsExtension
from cruxcelery.flows.handle import FlowHandle
from cruxcelery.flows.manager import FlowRuntime
from cruxcelery.settings import CruxSettings


class Crux(Runtime):
    """The cruxcelery runtime for one Celery app: actions, telemetry and durable flows."""

    def __init__(self, app: Celery, settings: CruxSettings | None = None) -> None:
        super().__init__(app, settings)
        install_delivery(self)
        self.flows = FlowRuntime(self)
        self.add_extension(FlowsExtension(self.flows))
        self.add_extension(AgentsExtension(self))

    def flow(self, name: str, *, args: type[BaseModel],
             signals: dict[str, type[BaseModel]] | None = None) -> FlowHandle[Any]:
        """Define a durable flow; decorate its body with ``@handle.handler``."""
        return self.flows.flow(name, args, signals)

    def tool(self, fn: Callable[[ToolContext, Any], Any] | None = None, *, name: str | None = None,
             description: str | None = None, args: type[BaseModel] | None = None, as_task: bool = False,
             **task_options: Any) -> Any:
        """Decorate ``fn(ctx, args)`` into a ``Tool``: an in-process ``tool.call`` span when called
        (or passed to ``ctx.crux.run_tool``), or with ``as_task=True`` also a Celery task that
        ``run_tool`` publishes across a boundary (``task_options`` go to that task)."""

        def decorate(func: Callable[[ToolContext, Any], Any]) -> Tool[Any]:
            return make_tool(self, func, name=name, description=description, args=args, as_task=as_task,
                             task_options=dict(task_options))

        return decorate(fn) if fn is not None else decorate

    @classmethod
    def current(cls) -> Crux | None:
        """The most recently created ``Crux`` in this process."""
        runtime = Runtime.current()
        return runtime if isinstance(runtime, Crux) else None
