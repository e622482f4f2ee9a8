"""Identifier formats of the Crux record model, and fork-safe generation."""

from __future__ import annotations

import itertools
import os
import random
import re
import secrets
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
_PAIRS = [a + b for a in _DIGITS for b in _DIGITS]  # every two-digit base-36 string, by value


def _base36(number: int) -> str:
    if number < 36:
        return _DIGITS[number]
    if number < 1296:
        return _PAIRS[number]
    high, low = divmod(number, 1296)
    return _base36(high) + _PAIRS[low]


class _Random(random.Random):
    """Random bits for ids: seeded from ``os.urandom`` in every process (again after a fork, so
    prefork pool children never share a sequence). Ids need uniqueness, not secrecy; one
    ``getrandbits`` costs a fraction of an ``os.urandom`` system call."""

    def __init__(self) -> None:
        super().__init__(os.urandom(32))

    def reseed(self) -> None:
        self.seed(os.urandom(32))

    def hex(self, nbytes: int) -> str:
        return f"{self.getrandbits(nbytes * 8):0{nbytes * 2}x}"


_random = _Random()


class _RecordIds:
    """``rec_<16 hex>_<counter base36>``: a random per-process prefix and a counter.

    The prefix is drawn again in a forked child, so prefork pool children never collide.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._prefix = f"rec_{secrets.token_hex(8)}_"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return self._prefix + _base36(next(self._counter))  # count is atomic under the GIL


_record_ids = _RecordIds()


def _after_fork() -> None:
    _random.reseed()
    _record_ids._reset()


os.register_at_fork(after_in_child=_after_fork)


def record_id() -> str:
    return _record_ids.next()


def run_id() -> str:
    return "run_" + _random.hex(12)


def segment_id() -> str:
    return "seg_" + _random.hex(12)


def event_id() -> str:
    return "event_" + _random.hex(8)


def boundary_id() -> str:
    return "bnd_" + _random.hex(12)


def artifact_id() -> str:
    return "art_" + _random.hex(8)


def trace_id() -> str:
    value = _random.getrandbits(128)
    return f"{value or 1:032x}"  # all zeros is W3C's invalid trace id


def span_id() -> str:
    value = _random.getrandbits(64)
    return f"{value or 1:016x}"


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
