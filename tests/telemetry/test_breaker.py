"""The circuit breaker, alone (a fake clock) and on the HTTP path (HttpExporter, HttpTransport)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import encode_record
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.retry import Deadline
from cruxcelery.telemetry.http.transport import HttpTransport
from tests.receiver import Receiver, free_port, sample_records
from tests.telemetry.spoolkit import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: Clock, **options: Any) -> CircuitBreaker:
    return CircuitBreaker(clock=clock, random_source=lambda: 0.5, **options)  # 0.5: no jitter


@pytest.fixture()
def make_exporter() -> Iterator[Callable[..., HttpExporter]]:
    made: list[HttpExporter] = []

    def make(url: str, breaker: CircuitBreaker | None = None) -> HttpExporter:
        exporter = HttpExporter(HttpTransport(url), breaker=breaker or CircuitBreaker())
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown(0.05)


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(record["recordId"]) for record in records]


def test_a_new_breaker_is_closed_and_allows_every_send() -> None:
    breaker = make_breaker(Clock())
    assert not breaker.is_open and all(breaker.allow() for _ in range(3))


def test_a_failure_opens_it_and_callers_are_turned_away_until_the_probe_time() -> None:
    clock = Clock()
    breaker = make_breaker(clock, probe_base_s=1.0)
    breaker.failure("refused")
    assert breaker.is_open and not breaker.allow()
    clock.now += 0.99
    assert not breaker.allow()
    clock.now += 0.02
    assert breaker.allow()


def test_only_one_probe_at_a_time_while_open() -> None:
    clock = Clock()
    breaker = make_breaker(clock, probe_base_s=1.0)
    breaker.failure()
    clock.now += 5.0
    assert breaker.allow() and not breaker.allow()
    breaker.release_probe()
    assert breaker.allow()


def test_a_successful_probe_closes_it() -> None:
    clock = Clock()
    breaker = make_breaker(clock, probe_base_s=1.0)
    breaker.failure()
    clock.now += 1.5
    assert breaker.allow()
    breaker.success()
    assert not breaker.is_open and breaker.allow() and breaker.stats().failures == 0


def test_the_probe_interval_doubles_with_each_failure_up_to_the_cap() -> None:
    clock = Clock()
    breaker = make_breaker(clock, probe_base_s=1.0, probe_cap_s=3.0)
    waits = []
    for _ in range(4):
        breaker.failure()
        waits.append(breaker.probe_at() - clock.now)
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_retry_after_postpones_the_probe() -> None:
    clock = Clock()
    breaker = make_breaker(clock, probe_base_s=1.0)
    breaker.failure("HTTP 429", not_before=clock.now + 30.0)
    assert breaker.probe_at() == clock.now + 30.0


def test_counters_are_kept() -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    breaker.failure("refused")
    breaker.is_open_now()
    breaker.is_open_now()
    stats = breaker.stats()
    assert (stats.state, stats.opened, stats.short_circuited, stats.last_error) == ("open", 1, 2, "refused")


def test_a_send_stops_at_the_first_server_failure_when_a_breaker_is_given(receiver: Receiver) -> None:
    receiver.script(503, 503, 503)
    breaker = CircuitBreaker()
    records = [encode_record(record) for record in sample_records(3)]
    report = HttpTransport(receiver.url).send_encoded(records, Deadline(5.0), None, breaker)
    assert report.requests == 1 and len(report.pending) == 3 and report.server_failed
    assert breaker.is_open and len(receiver.requests()) == 1


def test_an_answered_request_closes_the_breaker(receiver: Receiver) -> None:
    breaker = CircuitBreaker()
    breaker.failure("earlier")
    records = [encode_record(sample_records(1)[0])]
    report = HttpTransport(receiver.url).send_encoded(records, Deadline(5.0), None, breaker)
    assert report.delivered == 1 and not breaker.is_open


def test_with_devtools_dead_flushes_after_the_first_failure_do_not_wait(
    make_exporter: Callable[..., HttpExporter],
) -> None:
    breaker = CircuitBreaker(probe_base_s=60.0)
    exporter = make_exporter(f"http://127.0.0.1:{free_port()}", breaker)
    exporter.export(sample_records(1))
    assert exporter.flush(30.0).status == "failed"  # the first failure: the breaker opens
    started = time.monotonic()
    for record in sample_records(20, tag="fedcba9876543210"):
        exporter.export([record])
        result = exporter.flush(30.0)
        assert result.status == "failed"
    assert time.monotonic() - started < 15.0  # twenty 30 s budgets: none was waited out
    assert breaker.stats().short_circuited == 20
    assert exporter.source_health()["queued"] == 21 and result.remaining == 21


def test_records_stay_queued_while_open_and_arrive_once_after_a_probe_succeeds(
    make_exporter: Callable[..., HttpExporter],
) -> None:
    port = free_port()
    breaker = CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.1)
    exporter = make_exporter(f"http://127.0.0.1:{port}", breaker)
    records = sample_records(30)
    exporter.export(records[:10])
    assert exporter.flush(3.0).status == "failed" and breaker.is_open
    exporter.export(records[10:])
    with Receiver(port=port) as receiver:
        eventually(lambda: exporter.flush(3.0).status == "drained")
        assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert not breaker.is_open
