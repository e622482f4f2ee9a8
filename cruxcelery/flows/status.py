"""Flow statuses: the lifecycle vocabulary shared by snapshots, keys and indexes."""

from __future__ import annotations

from typing import Final, Literal, get_args

FlowStatus = Literal[
    "pending", "running", "waiting", "suspended", "completed", "failed", "cancelled", "expired"
]

FLOW_STATUSES: Final[tuple[FlowStatus, ...]] = get_args(FlowStatus)
TERMINAL_STATUSES: Final[frozenset[FlowStatus]] = frozenset({"completed", "failed", "cancelled", "expired"})
