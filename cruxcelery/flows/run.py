"""One execution segment of a flow: its snapshot (saved with a version check), its records and
the context its steps run under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from cruxcelery.core.context import ActiveContext
from cruxcelery.flows.errors import FlowCancelled, LeaseLost, VersionConflict
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.telemetry.spans import CruxSpan, Segment

if TYPE_CHECKING:
    from cruxcelery.flows.timers import Timers


@dataclass
class FlowRun:
    store: RedisFlowStore
    snap: FlowSnapshot
    segment: Segment
    span: CruxSpan
    ctx: ActiveContext
    timers: Timers
    signals: dict[str, type[BaseModel]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stored_status: str = self.snap.status
        self._start_unsaved = False
        # what each wait occurrence took: signals (the store's delivered hash) and met conditions
        self.delivered: dict[str, Any] = {**self.store.signals.delivered(self.snap.flow_id),
                                          **self.snap.delivered_signals}

    def begin(self) -> None:
        """The segment starts: ``running`` in memory; written with the next save, or before user
        code runs (``mark_running``), whichever comes first."""
        self.snap.status = "running"
        self.snap.segments += 1
        self._start_unsaved = True

    def mark_running(self) -> None:
        """Make ``running`` visible before user code that may take a while."""
        if self._start_unsaved:
            self.save()

    @property
    def flow_id(self) -> str:
        return self.snap.flow_id

    def save(self, **changes: Any) -> FlowSnapshot:
        """Write the snapshot with ``changes`` if nobody else wrote it since we read it; only a
        write that succeeded becomes ``snap`` (a lost one leaves this execution's view as it was,
        never claiming a status the store does not hold). A flow cancelled meanwhile unwinds with
        ``FlowCancelled``; anything else means another execution holds the flow now
        (``LeaseLost``)."""
        try:
            self.snap = self.store.snapshots.save(self.snap.model_copy(update=changes), self.snap.version,
                                                  self._stored_status)
            self._stored_status = self.snap.status
            self._start_unsaved = False
        except VersionConflict:
            fresh = self.store.snapshots.load(self.flow_id)
            if fresh is None or fresh.status == "cancelled":
                raise FlowCancelled(fresh.cancel_reason if fresh else "the flow was deleted") from None
            raise LeaseLost(f"flow {self.flow_id} was written by another execution") from None
        return self.snap
