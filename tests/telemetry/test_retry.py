"""The retry policy, apart from the transport: statuses, backoff, jitter, Retry-After, deadline."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from cruxcelery.telemetry.http.retry import (
    RETRYABLE_STATUSES,
    Backoff,
    Deadline,
    RetryPolicy,
    backoff_s,
    is_retryable_status,
    parse_retry_after,
)


def test_retryable_statuses_are_408_409_425_429_and_every_5xx() -> None:
    assert frozenset({408, 409, 425, 429}) == RETRYABLE_STATUSES
    assert all(is_retryable_status(status) for status in (408, 409, 425, 429, 500, 502, 503, 599))
    assert not any(is_retryable_status(status) for status in (200, 202, 301, 400, 401, 404, 413, 422))


def test_backoff_doubles_from_100_ms_and_caps_at_5_s() -> None:
    middle = 0.5  # a random draw of 0.5 means no jitter
    assert [backoff_s(attempt, lambda: middle) for attempt in range(8)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    )
    assert backoff_s(10_000, lambda: middle) == pytest.approx(5.0)


def test_backoff_jitter_stays_within_20_percent() -> None:
    assert backoff_s(3, lambda: 0.0) == pytest.approx(0.8 * 0.8)
    assert backoff_s(3, lambda: 0.999999) == pytest.approx(0.8 * 1.2, rel=1e-5)


def test_retry_after_in_seconds_is_parsed() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0


def test_retry_after_as_http_date_is_relative_to_now() -> None:
    now = 1_800_000_000.0
    header = formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=lambda: now) == pytest.approx(42.0)
    assert parse_retry_after(formatdate(now - 42, usegmt=True), now=lambda: now) == 0.0


def test_unusable_retry_after_is_ignored() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None


def test_larger_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(random_source=lambda: 0.5)
    assert policy.delay(0, retry_after_s=2.0) == 2.0
    assert policy.delay(4, retry_after_s=0.5) == pytest.approx(1.6)


def test_no_retry_is_planned_past_the_deadline() -> None:
    now = [100.0]
    deadline = Deadline(1.0, clock=lambda: now[0])
    policy = RetryPolicy(random_source=lambda: 0.5)
    assert policy.next_delay(0, deadline) == pytest.approx(0.1)
    assert policy.next_delay(0, deadline, retry_after_s=5.0) is None
    now[0] = 100.95
    assert deadline.remaining() == pytest.approx(0.05)
    assert policy.next_delay(0, deadline) is None
    now[0] = 101.0
    assert deadline.expired()


def test_backoff_grows_with_failures_and_resets_on_success() -> None:
    backoff = Backoff(RetryPolicy(random_source=lambda: 0.5))
    backoff.failed(10.0)
    assert backoff.ready_at() == pytest.approx(10.1)
    backoff.failed(20.0)
    assert backoff.ready_at() == pytest.approx(20.2)
    backoff.succeeded()
    assert backoff.ready_at() == 0.0


def test_urgent_caller_cuts_a_backoff_short_but_not_a_retry_after() -> None:
    backoff = Backoff(RetryPolicy(base_s=5.0, random_source=lambda: 0.5))
    backoff.last_attempt = 10.0
    backoff.failed(10.0)
    assert backoff.ready_at() == pytest.approx(15.0)
    assert backoff.ready_at(urgent=True, probe_interval_s=0.25) == pytest.approx(10.25)
    backoff.failed(10.0, not_before=40.0)
    assert backoff.ready_at(urgent=True) == 40.0
