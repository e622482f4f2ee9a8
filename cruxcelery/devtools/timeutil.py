"""Record timestamps: ISO 8601 UTC strings on the wire, epoch milliseconds inside devtools.

Only instants from year 1 to year 9999 in UTC can be written back as ISO 8601 (``iso``): ingest
rejects a record whose time falls outside (``out_of_range``), and ``iso`` clamps any other value
(a time derived from a huge ``durationMs``...) into that range instead of failing a read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = ["MAX_MS", "MIN_MS", "iso", "out_of_range", "parse_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) / timedelta(milliseconds=1)
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) / timedelta(milliseconds=1)


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


def out_of_range(value: object) -> bool:
    """Whether ``value`` is an ISO 8601 timestamp outside years 1 to 9999 in UTC."""
    ms = parse_ms(value)
    return ms is not None and not MIN_MS <= ms <= MAX_MS


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    at = _EPOCH + timedelta(seconds=seconds)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}."


def iso(ms: float) -> str:
    """``2026-05-16T18:00:00.000Z`` for epoch milliseconds (rounded to the millisecond; clamped to
    years 1 to 9999, NaN read as the earliest)."""
    if not MIN_MS <= ms <= MAX_MS:
        ms = MAX_MS if ms > MAX_MS else MIN_MS
    seconds, millis = divmod(round(ms), 1000)
    return f"{_second(seconds)}{millis:03d}Z"
