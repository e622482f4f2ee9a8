"""The exporter contract: where finished, JSON-safe records go.

An exporter receives records as plain dicts that already passed the JSON-safe preview
(``telemetry.preview``) and validate against ``telemetry.records``. Exporters never raise into the
caller: ``export`` must return quickly (queue, write, or drop and count), ``flush`` and ``shutdown``
are bounded by ``timeout_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

FlushStatus = Literal["drained", "deadline", "failed"]

JsonRecord = Mapping[str, Any]


class FlushResult(BaseModel):
    """What one flush achieved. ``drained``: nothing left; ``deadline``: time ran out with records
    still queued; ``failed``: the destination refused or could not be reached."""

    model_config = ConfigDict(frozen=True)

    status: FlushStatus = "drained"
    delivered: int = 0
    rejected: int = 0
    dropped: int = 0
    remaining: int = 0

    def merge(self, other: FlushResult) -> FlushResult:
        """Combine the results of two exporters: the worst status wins, counts add up."""
        order: dict[FlushStatus, int] = {"drained": 0, "deadline": 1, "failed": 2}
        status = self.status if order[self.status] >= order[other.status] else other.status
        return FlushResult(
            status=status,
            delivered=self.delivered + other.delivered,
            rejected=self.rejected + other.rejected,
            dropped=self.dropped + other.dropped,
            remaining=self.remaining + other.remaining,
        )


@lru_cache(maxsize=1024)
def flush_result(status: FlushStatus, delivered: int, rejected: int, dropped: int, remaining: int) -> FlushResult:
    """``FlushResult(...)``, made once for each set of values (it is frozen): the same few results
    (``drained`` with an action's record count) come back from every flush, and a pydantic model
    costs more to build than the rest of an exporter's flush."""
    return FlushResult(status=status, delivered=delivered, rejected=rejected, dropped=dropped, remaining=remaining)


@runtime_checkable
class RecordExporter(Protocol):
    """A destination for records. Implementations must be thread-safe and fork-aware."""

    def export(self, records: Sequence[JsonRecord]) -> None:
        """Accept records. Returns quickly; never raises."""

    def flush(self, timeout_s: float) -> FlushResult:
        """Deliver what is pending, for at most ``timeout_s`` seconds. Never raises."""

    def shutdown(self, timeout_s: float) -> FlushResult:
        """Flush, then release resources. Never raises."""
