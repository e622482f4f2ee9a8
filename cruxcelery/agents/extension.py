"""The agents' extension: it adds their ``ctx.crux`` helpers, and when an execution ends, the tool
calls its generations requested and nothing executed are recorded (``executed: false``) and
flushed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cruxcelery.agents.ledger as ledger
from cruxcelery.agents.helpers import AgentHelpers
from cruxcelery.core.extensions import Execution, Extension, Worker
from cruxcelery.core.outcomes import Outcome

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime


class AgentsExtension(Extension):
    name = "agents"
    helpers = AgentHelpers

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_execution_open(self, execution: Execution) -> None:
        ledger.begin(execution.task_id)

    def on_execution_close(self, execution: Execution, outcome: Outcome) -> None:
        ledger.end(execution.task_id)
        if ledger.settle(execution.task_id):
            self.runtime.flush(self.runtime.settings.boundary_flush_timeout_s)

    def on_worker_shutdown(self, worker: Worker) -> None:
        if ledger.settle_all():
            self.runtime.flush()
