"""Record timestamps: ISO 8601 UTC strings on the wire, epoch milliseconds inside devtools."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def parse_ms(value: object) -> float | None:
    """Epoch milliseconds of an ISO 8601 timestamp, or ``None`` when it is not one (any other
    value, unhashable ones included: records of unknown types are not checked)."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_ms(value)


@lru_cache(maxsize=65536)
def _parse_ms(value: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() * 1000.0


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: float) -> str:
    """``2026-05-16T18:00:00.000Z`` for epoch milliseconds (rounded to the millisecond)."""
    seconds, millis = divmod(round(ms), 1000)
    return f"{_second(seconds)}{millis:03d}Z"
