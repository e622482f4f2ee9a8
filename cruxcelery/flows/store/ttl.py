"""Durations shared by the flow store's parts: a day, and seconds to the milliseconds Redis takes."""

from __future__ import annotations

DAY_S = 86_400.0


def ttl_ms(seconds: float, what: str) -> int:
    """Seconds to positive whole milliseconds."""
    millis = int(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"{what} must be positive, got {seconds!r}")
    return millis
