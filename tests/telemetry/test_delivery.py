"""HttpExporter end to end against a real receiver: queue, background sender, bounded flush, fork."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from cruxcelery.telemetry.exporter import RecordExporter
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.retry import RetryPolicy
from cruxcelery.telemetry.http.transport import HttpTransport, SendReport
from tests.receiver import Receiver, free_port, sample_record, sample_records
from tests.telemetry.spoolkit import eventually

OVERRUN_S = 0.3  # a deadline may be overrun by scheduling on a loaded 2-core machine, no more
MakeExporter = Callable[..., HttpExporter]


@pytest.fixture()
def make_exporter() -> Iterator[MakeExporter]:
    """Build exporters; every one is shut down after the test."""
    made: list[HttpExporter] = []

    def make(url: str, token: str | None = None, **options: Any) -> HttpExporter:
        exporter = HttpExporter(HttpTransport(url, token), **options)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown(0.05)


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(record["recordId"]) for record in records]


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def slowest_export(exporter: HttpExporter, records: list[dict[str, Any]]) -> float:
    """Export the records one call at a time; the longest call, in seconds."""
    slowest = 0.0
    for record in records:
        started = time.monotonic()
        exporter.export([record])
        slowest = max(slowest, time.monotonic() - started)
    return slowest


def test_is_a_record_exporter(receiver: Receiver, make_exporter: MakeExporter) -> None:
    assert isinstance(make_exporter(receiver.url), RecordExporter)


def test_export_then_flush_delivers_everything_in_order(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    records = sample_records(230)
    for record in records:
        exporter.export([record])
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.delivered == 230 and result.remaining == 0
    assert receiver.record_ids() == ids(records)


def test_records_are_sent_without_a_flush(receiver: Receiver, make_exporter: MakeExporter) -> None:
    make_exporter(receiver.url).export(sample_records(5))
    assert receiver.wait_for(records=5, timeout=2.0)


def test_export_takes_a_snapshot_of_the_record(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    record = sample_record(0)
    exporter.export([record])
    record["name"] = "mutated after export"
    exporter.flush(3.0)
    assert receiver.records()[0]["name"] == "generation.step"


def test_no_request_over_50_records_or_1_mib(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    records = sample_records(100, size=300) + sample_records(20, tag="fedcba9876543210", size=150_000)
    exporter.export(records)
    assert exporter.flush(5.0).status == "drained"
    requests = receiver.requests()
    assert max(len(request.records) for request in requests) <= 50
    assert max(request.content_length for request in requests) <= MAX_BODY_BYTES
    assert sorted(receiver.record_ids()) == sorted(ids(records))


def test_one_rejected_record_does_not_block_the_others(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    records = sample_records(20)
    receiver.reject(str(records[3]["recordId"]))
    exporter.export(records)
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.delivered == 19 and result.rejected == 1
    assert receiver.record_ids() == ids(records[:3] + records[4:])
    assert exporter.source_health()["rejected"] == 1


def test_503_then_202_delivers_everything(receiver: Receiver, make_exporter: MakeExporter) -> None:
    receiver.script(503)
    exporter = make_exporter(receiver.url)
    records = sample_records(10)
    exporter.export(records)
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.delivered == 10
    assert receiver.record_ids() == ids(records)
    assert exporter.source_health()["retries"] >= 1


def test_retry_after_within_the_deadline_is_honoured(receiver: Receiver, make_exporter: MakeExporter) -> None:
    receiver.script(503, retry_after=1)
    exporter = make_exporter(receiver.url)
    exporter.export(sample_records(3))
    result, elapsed = timed(lambda: exporter.flush(3.0))
    first, second = receiver.requests()
    assert result.status == "drained" and result.delivered == 3
    assert second.arrived_at - first.arrived_at >= 1.0 and elapsed < 3.0


def test_retry_after_beyond_the_deadline_returns_deadline_in_time(
    receiver: Receiver, make_exporter: MakeExporter
) -> None:
    receiver.script(503, retry_after=30)
    exporter = make_exporter(receiver.url)
    exporter.export(sample_records(3))
    result, elapsed = timed(lambda: exporter.flush(1.0))
    assert result.status == "deadline" and result.remaining == 3
    assert 1.0 <= elapsed < 1.0 + OVERRUN_S
    assert len(receiver.requests()) == 1  # the server asked for 30 s: it is not called again


def test_receiver_down_flush_fails_in_time_and_export_never_blocks(down_url: str, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(down_url)
    slowest = slowest_export(exporter, sample_records(300))
    result, elapsed = timed(lambda: exporter.flush(3.0))
    assert result.status == "failed" and result.remaining == 300 and result.delivered == 0
    assert elapsed < 3.0 + OVERRUN_S and slowest < 0.05
    health = exporter.source_health()
    assert health["queued"] == 300 and "unreachable" in health["lastError"]


def test_receiver_hanging_flush_returns_in_time_and_export_never_blocks(
    receiver: Receiver, make_exporter: MakeExporter
) -> None:
    receiver.hang(30.0, times=100)
    exporter = make_exporter(receiver.url)
    exporter.export(sample_records(1))
    assert receiver.wait_for(requests=1)
    slowest = slowest_export(exporter, sample_records(300))
    result, elapsed = timed(lambda: exporter.flush(3.0))
    assert result.status in ("deadline", "failed") and result.remaining == 301
    assert elapsed < 3.0 + OVERRUN_S and slowest < 0.05


def test_queue_overflow_drops_the_oldest_and_counts_them(receiver: Receiver, make_exporter: MakeExporter) -> None:
    receiver.hang(5.0)
    exporter = make_exporter(receiver.url, max_queue_records=10)
    records = sample_records(31)
    exporter.export(records[:1])  # in flight, held by the receiver
    assert receiver.wait_for(requests=1)
    for record in records[1:]:
        exporter.export([record])
    assert exporter.source_health()["dropped"] == 20
    receiver.release()
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.dropped == 20 and result.delivered == 11
    assert receiver.record_ids() == ids(records[:1] + records[21:])


def test_queue_byte_bound_drops_the_oldest(receiver: Receiver, make_exporter: MakeExporter) -> None:
    receiver.hang(5.0)
    exporter = make_exporter(receiver.url, max_queue_bytes=3000)  # room for 5 records of 600 bytes
    records = sample_records(13)
    exporter.export(records[:1])
    assert receiver.wait_for(requests=1)
    exporter.export(records[1:])
    receiver.release()
    result = exporter.flush(3.0)
    assert result.dropped == 7 and result.delivered == 6
    assert receiver.record_ids() == ids(records[:1] + records[8:])


def test_oversized_record_dropped_and_counted_while_the_others_arrive(
    receiver: Receiver, make_exporter: MakeExporter
) -> None:
    exporter = make_exporter(receiver.url)
    records = sample_records(5)
    records[2] = sample_record(2, size=MAX_BODY_BYTES + 1)
    exporter.export(records)
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.delivered == 4 and result.dropped == 1
    assert exporter.source_health()["oversized"] == 1
    assert receiver.record_ids() == ids(records[:2] + records[3:])


def test_flush_probes_a_recovered_receiver_instead_of_sleeping_out_the_backoff(
    make_exporter: MakeExporter,
) -> None:
    port = free_port()
    slow = RetryPolicy(base_s=5.0)  # after one refused connection: hold off for ~5 s
    exporter = HttpExporter(HttpTransport(f"http://127.0.0.1:{port}", policy=slow))
    exporter.export(sample_records(3))
    assert exporter.flush(0.3).status == "failed"
    with Receiver(port=port) as receiver:
        result, elapsed = timed(lambda: exporter.flush(3.0))
        assert result.status == "drained" and result.delivered == 3 and elapsed < 1.0
        assert len(receiver.record_ids()) == 3
    exporter.shutdown(0.1)


def test_export_never_raises_on_garbage(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    exporter.export(None)  # type: ignore[arg-type]
    exporter.export([None, {"recordId": "x", "v": object()}, sample_record(0)])  # type: ignore[list-item]
    result = exporter.flush(3.0)
    assert result.delivered == 1 and result.dropped == 2


def test_flush_counts_are_those_since_the_previous_flush(receiver: Receiver, make_exporter: MakeExporter) -> None:
    exporter = make_exporter(receiver.url)
    exporter.export(sample_records(4))
    assert exporter.flush(3.0).delivered == 4
    assert exporter.flush(3.0).delivered == 0
    assert exporter.source_health()["delivered"] == 4


def test_shutdown_stops_the_sender_and_later_exports_are_dropped(
    receiver: Receiver, make_exporter: MakeExporter
) -> None:
    exporter = make_exporter(receiver.url)
    exporter.export(sample_records(3))
    assert exporter.shutdown(3.0).delivered == 3
    exporter.export(sample_records(2, tag="fedcba9876543210"))
    assert exporter.flush(1.0).dropped == 2
    assert len(receiver.record_ids()) == 3


def test_a_dead_receiver_logs_one_warning_not_a_flood(
    down_url: str, make_exporter: MakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(down_url)
    with caplog.at_level(logging.WARNING, logger="cruxcelery.telemetry"):
        for record in sample_records(20):
            exporter.export([record])
            exporter.flush(0.05)
    gave_up = [entry for entry in caplog.records if "flush gave up" in entry.getMessage()]
    assert len(gave_up) == 1 and len(caplog.records) <= 3


def test_the_sender_is_not_traced_by_opentelemetry_instrumentation(receiver: Receiver) -> None:
    seen: list[bool] = []

    class Probe(HttpTransport):
        def send_encoded(self, *args: Any, **kwargs: Any) -> SendReport:
            seen.append(is_instrumentation_enabled())
            return super().send_encoded(*args, **kwargs)

    exporter = HttpExporter(Probe(receiver.url))
    exporter.export(sample_records(1))
    assert exporter.shutdown(3.0).delivered == 1
    assert seen == [False] and is_instrumentation_enabled()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python >= 3.12, threads alive
def test_forked_child_delivers_its_own_records_and_the_parent_keeps_its_queue(
    receiver: Receiver, make_exporter: MakeExporter
) -> None:
    exporter = make_exporter(receiver.url)
    parent = sample_records(5, tag="aaaaaaaaaaaaaaaa")
    child = sample_records(3, tag="bbbbbbbbbbbbbbbb")
    receiver.hang(5.0)
    exporter.export(parent[:1])  # in flight in the parent, held by the receiver
    assert receiver.wait_for(requests=1)
    exporter.export(parent[1:])
    pid = os.fork()
    if pid == 0:  # the child: must not send the parent's records, must deliver its own
        code = 1
        try:
            exporter.export(child)
            result = exporter.flush(3.0)
            code = 0 if (result.status, result.delivered, result.remaining) == ("drained", 3, 0) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert receiver.record_ids() == ids(child)  # the parent's record is still held
    assert exporter.source_health()["queued"] == 5
    receiver.release()
    result = exporter.flush(3.0)
    assert result.status == "drained" and result.delivered == 5
    assert sorted(receiver.record_ids()) == sorted(ids(parent + child))


def test_records_refused_for_a_wrong_token_stay_queued_and_arrive_once_the_token_is_right(
    make_exporter: MakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(token="another") as receiver:
        exporter = make_exporter(receiver.url, "the-apps-token", breaker=CircuitBreaker(probe_base_s=0.05))
        records = sample_records(5)
        with caplog.at_level(logging.WARNING, logger="cruxcelery.telemetry"):
            exporter.export(records)
            result = exporter.flush(2.0)
            eventually(lambda: exporter.source_health()["retries"] >= 2)  # probes keep being refused
        assert result.status == "failed" and result.rejected == 0 and exporter.source_health()["queued"] == 5
        about_delivery = [r.getMessage() for r in caplog.records if "flush gave up" not in r.getMessage()]
        assert len(about_delivery) == 1 and receiver.url in about_delivery[0]  # once a minute at most
        receiver.token = "the-apps-token"  # devtools restarted with the token the app sends
        eventually(lambda: receiver.record_ids() == ids(records))
        assert exporter.flush(2.0).status == "drained"
        assert exporter.source_health()["rejected"] == 0


def test_a_body_refused_413_loses_only_the_record_too_large_for_the_server(make_exporter: MakeExporter) -> None:
    with Receiver(max_body_bytes=4000) as receiver:
        exporter = make_exporter(receiver.url)
        small, large = sample_records(8, size=500), sample_record(99, size=5000)
        exporter.export([*small[:3], large, *small[3:]])
        result = exporter.flush(3.0)
        assert result.status == "drained" and (result.delivered, result.rejected) == (8, 1)
        assert sorted(receiver.record_ids()) == sorted(ids(small))
