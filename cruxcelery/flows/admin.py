"""Operator actions on a stored flow beyond the everyday API: ``retry_flow`` runs a ``failed``
flow again from its first unrecorded step.

What a retry writes, in order, and what a crash between the writes leaves:

1. the lease index entry (2 x ``CRUX_FLOW_LEASE_S``), first: a retry interrupted after the flow
   became ``pending`` (or whose publish is lost) is dispatched by the sweeper, like a ``start()``
   whose message never went out. A crash here leaves an entry on a failed flow, which the sweeper
   drops.
2. the snapshot, ``failed`` -> ``pending`` (a version-checked ``SAVE``: a concurrent retry, cancel
   or delete wins or loses cleanly), its error and output cleared; completed steps, delivered
   signals and rejected signals stay; the task ids recorded for durable children go (a new
   attempt publishes a new child). A crash here leaves a ``pending`` flow whose keys still
   expire after ``CRUX_FLOW_RETENTION_S`` (a retry of it is refused: it is no longer failed) and
   that the sweeper runs (1).
3. the flow's keys no longer expire (``PERSIST``), and its durable children's old outcomes are
   dropped (a failed child's outcome would otherwise be read again by the step's new attempt).
4. the dispatch through the outbox (``FlowRuntime.dispatch``, reason ``retry``).

The flow's run resumes (a ``run:resume`` with reason ``retry``) and ends again with the retry's
outcome: the run's last lifecycle record is its status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cruxcelery.core import registry
from cruxcelery.errors import CruxError
from cruxcelery.flows.errors import FlowError, VersionConflict
from cruxcelery.flows.extension import FlowsExtension
from cruxcelery.flows.guard import typed
from cruxcelery.flows.snapshot import FlowSnapshot, FlowSummary
from cruxcelery.flows.store.keys import validate_flow_id

if TYPE_CHECKING:
    from cruxcelery.core.runtime import Runtime
    from cruxcelery.flows.manager import FlowRuntime

__all__ = ["FlowNotRetryable", "retry", "retry_flow"]

_ATTEMPTS = 20


class FlowNotRetryable(FlowError):
    """Only a ``failed`` flow can be retried; ``status`` is the flow's status now."""

    def __init__(self, flow_id: str, status: str) -> None:
        super().__init__(f"flow {flow_id} is {status}; only a failed flow can be retried")
        self.flow_id = flow_id
        self.status = status


@typed
def retry(flows: FlowRuntime, flow_id: str) -> FlowSummary:
    """Run a ``failed`` flow again from its first unrecorded step (completed steps stay recorded
    and are replayed, not re-run). ``FlowNotFound`` for an unknown flow, ``FlowNotRetryable`` for
    one that is not ``failed``; ``StoreUnavailable`` / ``BrokerUnavailable`` as the API raises them
    (once the flow is ``pending``, the sweeper runs it whatever failed after)."""
    store = flows.store
    validate_flow_id(flow_id)
    saved: FlowSnapshot | None = None
    for attempt in range(_ATTEMPTS):
        current = store.snapshots.require(flow_id)
        if current.status != "failed":
            raise FlowNotRetryable(flow_id, current.status)
        store.leases.track(flow_id, 2 * flows.crux.settings.flow_lease_s)  # 1: never pending and untracked
        again = current.model_copy(update={"status": "pending", "error": None, "output": None,
                                           "waiting": None, "suspended_at": None, "child_tasks": {}})
        try:
            saved = store.snapshots.save(again, current.version, "failed")
            break
        except VersionConflict:
            if attempt == _ATTEMPTS - 1:
                raise FlowError(f"flow {flow_id}: retry gave up after {_ATTEMPTS} concurrent writes") from None
    assert saved is not None
    store.retention.keep(saved)  # undo retire: its keys stop expiring, old child outcomes go
    head = store.snapshots.head(flow_id)
    flows.dispatch(flow_id, saved.name, "retry", head.queue if head is not None else None)
    return saved.summary()


def retry_flow(flow_id: str, *, crux: Runtime | None = None) -> FlowSummary:
    """Run a ``failed`` flow again from its first unrecorded step; returns its summary (``pending``).
    Uses the most recent ``Crux`` in the process unless given one."""
    runtime = crux or registry.current()
    extension = runtime.extension(FlowsExtension) if runtime is not None else None
    if extension is None:
        raise CruxError("no Crux(app) in this process: build one with Crux(celery_app) first")
    return retry(extension.flows, flow_id)
