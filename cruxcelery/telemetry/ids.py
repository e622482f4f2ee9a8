"""Identifier formats of the Crux record model, and fork-safe generation."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import threading
from datetime import UTC, datetime

RUN_ID = re.compile(r"^run_[0-9a-f]{24}$")
SEGMENT_ID = re.compile(r"^seg_[0-9a-f]{24}$")
RECORD_ID = re.compile(r"^rec_[0-9a-f]{16}_[0-9a-z]+$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
EVENT_ID = re.compile(r"^event_[0-9a-f]{16}$")
BOUNDARY_ID = re.compile(r"^bnd_[0-9a-f]{24}$")
ARTIFACT_ID = re.compile(r"^art_[0-9a-f]{16}$")

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    if number == 0:
        return "0"
    out = []
    while number:
        number, rem = divmod(number, 36)
        out.append(_DIGITS[rem])
    return "".join(reversed(out))


class _RecordIds:
    """``rec_<16 hex>_<counter base36>``: a random per-process prefix and a counter.

    The prefix is drawn again in a forked child, so prefork pool children never collide.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        value = next(self._counter)  # atomic: itertools.count is a C iterator called under the GIL
        return f"rec_{self._prefix}_{_base36(value)}"


_record_ids = _RecordIds()
os.register_at_fork(after_in_child=_record_ids._reset)


def record_id() -> str:
    return _record_ids.next()


def run_id() -> str:
    return "run_" + secrets.token_hex(12)


def segment_id() -> str:
    return "seg_" + secrets.token_hex(12)


def event_id() -> str:
    return "event_" + secrets.token_hex(8)


def boundary_id() -> str:
    return "bnd_" + secrets.token_hex(12)


def artifact_id() -> str:
    return "art_" + secrets.token_hex(8)


def trace_id() -> str:
    return secrets.token_hex(16)


def span_id() -> str:
    return secrets.token_hex(8)


_second: list[tuple[int, str]] = [(-1, "")]


def iso_ms(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-05-16T18:00:00.000Z`` (the seconds part is cached:
    records come in bursts within one second)."""
    whole = int(epoch_s)
    cached_second, prefix = _second[0]
    if whole != cached_second:
        prefix = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second[0] = (whole, prefix)
    return f"{prefix}{int((epoch_s - whole) * 1000):03d}Z"
