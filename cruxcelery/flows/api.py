"""Module-level flow functions (Crux's ``signalFlow``, ``cancelFlow``, ``listFlows``,
``createFlowId``). They use the most recent ``Crux`` in the process unless given one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cruxcelery.errors import CruxError
from cruxcelery.flows.keys import create_flow_id
from cruxcelery.flows.snapshot import FlowStatus, FlowSummary

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime
    from cruxcelery.runtime import Crux

__all__ = ["cancel_flow", "create_flow_id", "list_flows", "signal_flow"]


def _flows(crux: Crux | None) -> FlowRuntime:
    from cruxcelery.runtime import Crux

    runtime = crux or Crux.current()
    if runtime is None:
        raise CruxError("no Crux(app) in this process")
    return runtime.flows


def signal_flow(flow_id: str, name: str, payload: Any = None, *, crux: Crux | None = None) -> None:
    """Validate and store a signal, then schedule the flow's resume. ``FlowNotFound`` for an
    unknown flow, ``FlowNotWaiting`` for a finished one, ``SignalRejected`` for a bad payload."""
    _flows(crux).signal(flow_id, name, payload)


def cancel_flow(flow_id: str, reason: str | None = None, *, crux: Crux | None = None) -> FlowSummary:
    """Cancel a flow; a no-op on a finished one."""
    return _flows(crux).cancel(flow_id, reason)


def list_flows(status: FlowStatus | None = None, name: str | None = None, limit: int = 50,
               cursor: str | None = None, *, crux: Crux | None = None) -> tuple[list[FlowSummary], str | None]:
    """A page of flows, newest updated first, and the cursor of the next page (or ``None``)."""
    return _flows(crux).list_flows(status=status, name=name, limit=limit, cursor=cursor)
