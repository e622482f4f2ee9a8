"""The one clock of the flow store: epoch milliseconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000
