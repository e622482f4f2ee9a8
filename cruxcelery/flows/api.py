"""Module-level flow functions (Crux's ``signalFlow``, ``cancelFlow``, ``listFlows``,
``createFlowId``). They use the most recent ``Crux`` in the process unless given one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cruxcelery.core import registry
from cruxcelery.errors import CruxError
from cruxcelery.flows.extension import FlowsExtension
from cruxcelery.flows.snapshot import FlowStatus, FlowSummary
from cruxcelery.flows.store.keys import create_flow_id

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime
    from cruxcelery.flows.manager import FlowRuntime

__all__ = ["cancel_flow", "create_flow_id", "delete_flow", "list_flows", "purge_flows", "signal_flow"]


def _flows(crux: Runtime | None) -> FlowRuntime:
    runtime = crux or registry.current()
    extension = runtime.extension(FlowsExtension) if runtime is not None else None
    if extension is None:
        raise CruxError("no Crux(app) in this process: build one with Crux(celery_app) first")
    return extension.flows


def signal_flow(flow_id: str, name: str, payload: Any = None, *, signal_id: str | None = None,
                crux: Runtime | None = None) -> None:
    """Validate and store a signal, then schedule the flow's resume. ``FlowNotFound`` for an
    unknown flow, ``FlowNotWaiting`` for a finished one, ``SignalRejected`` for a bad payload or
    an undeclared name. A repeated ``signal_id`` stores nothing more (a retried signal)."""
    _flows(crux).signal(flow_id, name, payload, signal_id)


def cancel_flow(flow_id: str, reason: str | None = None, *, crux: Runtime | None = None) -> FlowSummary:
    """Cancel a flow; a no-op on a finished one."""
    return _flows(crux).cancel(flow_id, reason)


def list_flows(status: FlowStatus | None = None, name: str | None = None, limit: int = 50,
               cursor: str | None = None, *, crux: Runtime | None = None) -> tuple[list[FlowSummary], str | None]:
    """A page of flows, newest status change first, and the cursor of the next page (or ``None``)."""
    return _flows(crux).list_flows(status=status, name=name, limit=limit, cursor=cursor)


def delete_flow(flow_id: str, *, crux: Runtime | None = None) -> bool:
    """Delete a flow and every key of it now; returns whether it existed."""
    return _flows(crux).delete(flow_id)


def purge_flows(status: FlowStatus | None = None, older_than_s: float = 0.0, *, limit: int = 1000,
                crux: Runtime | None = None) -> int:
    """Delete finished flows (of ``status``, else of every finished status) not updated for
    ``older_than_s`` seconds, at most ``limit``; returns how many were deleted."""
    return _flows(crux).purge(status, older_than_s, limit)
