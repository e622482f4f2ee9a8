"""Durations as users write them: ``"24h"``, ``"30m"``, ``"2s"``, ``"1d"``, seconds, timedelta."""

from __future__ import annotations

import datetime as dt
import re

from cruxcelery.flows.errors import FlowError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def seconds(value: str | float | dt.timedelta | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float):
        result = float(value)
    else:
        match = _PATTERN.match(value)
        if match is None:
            raise FlowError(f"not a duration: {value!r} (use e.g. '30s', '15m', '24h', '2d')")
        result = float(match.group(1)) * _UNITS[match.group(2)]
    if result < 0:
        raise FlowError(f"a duration cannot be negative: {value!r}")
    return result
