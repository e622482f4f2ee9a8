"""The retry policy of the HTTP transport, kept apart from the transport so it is easy to test.

- Retryable HTTP statuses: 408, 409, 425, 429 and every 5xx (``is_retryable_status``).
- Backoff: ``min(5 s, 100 ms * 2**attempt)`` with +-20 % jitter (``RetryPolicy.backoff``).
- A ``Retry-After`` header (seconds or an HTTP date) wins when it asks for a longer wait.
- Everything is bounded by one overall ``Deadline`` on the monotonic clock: a wait that would end
  after the deadline is not taken (``RetryPolicy.next_delay`` returns ``None``).

Pure functions and small classes; the random source and the clocks are injectable.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = [
    "RETRYABLE_STATUSES",
    "Backoff",
    "Deadline",
    "RetryPolicy",
    "backoff_s",
    "is_retryable_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 425, 429})
"""HTTP statuses (besides every 5xx) after which the whole request is retried."""

BASE_DELAY_S = 0.1
MAX_DELAY_S = 5.0
JITTER = 0.2

Clock = Callable[[], float]
RandomSource = Callable[[], float]


def is_retryable_status(status: int) -> bool:
    """True for 408, 409, 425, 429 and every 5xx."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_s(
    attempt: int,
    random_source: RandomSource = random.random,
    *,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
    jitter: float = JITTER,
) -> float:
    """The wait before retry number ``attempt`` (0 for the first retry).

    ``min(cap_s, base_s * 2**attempt)`` scaled by a factor drawn uniformly from
    ``[1 - jitter, 1 + jitter)`` (``random_source`` returns a float in ``[0, 1)``).
    """
    exponent = min(max(attempt, 0), 62)
    nominal = min(cap_s, base_s * (2.0**exponent))
    factor = 1.0 + jitter * (2.0 * random_source() - 1.0)
    return max(0.0, nominal * factor)


def parse_retry_after(value: str | None, *, now: Clock = time.time) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or ``None`` if absent or unusable.

    Accepts delta-seconds (``"120"``, also tolerating ``"1.5"``) and HTTP dates
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, compared with the wall clock ``now``). A date in the past
    means 0. Never raises.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isnan(seconds):
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; tolerate a missing zone
        return None
    return max(0.0, when.timestamp() - now())


class Deadline:
    """A point in time on a monotonic clock, built from a timeout."""

    __slots__ = ("_at", "_clock")

    def __init__(self, timeout_s: float, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + max(0.0, timeout_s)

    @classmethod
    def at(cls, when: float, *, clock: Clock = time.monotonic) -> Deadline:
        """A deadline at the absolute time ``when`` of ``clock``."""
        deadline = cls(0.0, clock=clock)
        deadline._at = when
        return deadline

    @property
    def when(self) -> float:
        """The absolute time of the deadline, on its clock."""
        return self._at

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self._at

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"


class RetryPolicy:
    """Backoff with jitter, ``Retry-After`` and an overall deadline."""

    __slots__ = ("base_s", "cap_s", "jitter", "random_source")

    def __init__(
        self,
        *,
        base_s: float = BASE_DELAY_S,
        cap_s: float = MAX_DELAY_S,
        jitter: float = JITTER,
        random_source: RandomSource | None = None,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self.random_source: RandomSource = random_source or random.random

    def backoff(self, attempt: int) -> float:
        """The jittered exponential backoff for retry number ``attempt`` (0-based)."""
        return backoff_s(attempt, self.random_source, base_s=self.base_s, cap_s=self.cap_s, jitter=self.jitter)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The wait before the next retry: the backoff, or ``Retry-After`` when it is larger."""
        wait = self.backoff(attempt)
        if retry_after_s is not None and retry_after_s > wait:
            wait = retry_after_s
        return wait

    def next_delay(self, attempt: int, deadline: Deadline, retry_after_s: float | None = None) -> float | None:
        """The wait before the next retry, or ``None`` when that retry could not start before the
        deadline (give up now rather than sleep until the deadline)."""
        wait = self.delay(attempt, retry_after_s)
        if wait >= deadline.remaining():
            return None
        return wait


class Backoff:
    """When a background sender may try again: after a failed send, a jittered backoff that grows
    with consecutive failures, or the server's ``Retry-After`` when later. An urgent caller (a flush
    waiting) may cut a backoff short to probe the server, but never a ``Retry-After``.
    Not thread-safe."""

    __slots__ = ("_server_asked", "failures", "last_attempt", "policy", "until")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self.until = 0.0  # no attempt before this (monotonic)
        self.last_attempt = 0.0
        self._server_asked = False

    def failed(self, now: float, not_before: float | None = None) -> None:
        self.until = now + self.policy.backoff(self.failures)
        self._server_asked = not_before is not None and not_before > self.until
        if not_before is not None and self._server_asked:
            self.until = not_before
        self.failures += 1

    def succeeded(self) -> None:
        self.failures, self.until, self._server_asked = 0, 0.0, False

    def ready_at(self, *, urgent: bool = False, probe_interval_s: float = 0.25) -> float:
        """The earliest time of the next attempt."""
        if urgent and not self._server_asked:
            return min(self.until, self.last_attempt + probe_interval_s)
        return self.until
