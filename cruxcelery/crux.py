"""``Crux(app)``: the runtime with durable flows plugged in through the extension seam.

Flows register as one extension when ``Crux(app)`` is built, so every worker of the app reports
durable children, sweeps timers and recovers flows, whatever modules it imported."""

from __future__ import annotations

from typing import Any

from celery import Celery
from pydantic import BaseModel

from cruxcelery.flows.extension import FlowsExtension
from cruxcelery.flows.handle import FlowHandle
from cruxcelery.flows.manager import FlowRuntime
from cruxcelery.runtime import Runtime
from cruxcelery.settings import CruxSettings


class Crux(Runtime):
    """The cruxcelery runtime for one Celery app: actions, telemetry and durable flows."""

    def __init__(self, app: Celery, settings: CruxSettings | None = None) -> None:
        super().__init__(app, settings)
        self.flows = FlowRuntime(self)
        self.deferred = self.flows.timers
        self.add_extension(FlowsExtension(self.flows))

    def flow(self, name: str, *, args: type[BaseModel],
             signals: dict[str, type[BaseModel]] | None = None) -> FlowHandle[Any]:
        """Define a durable flow; decorate its body with ``@handle.handler``."""
        return self.flows.flow(name, args, signals)

    @classmethod
    def current(cls) -> Crux | None:
        """The most recently created ``Crux`` in this process."""
        runtime = Runtime.current()
        return runtime if isinstance(runtime, Crux) else None
