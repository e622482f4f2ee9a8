"""HttpTransport against a real receiver: chunking on the wire, dispositions, retries, deadlines."""

from __future__ import annotations

import logging
import time

import pytest

from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES, EncodedRecord, encode_record
from cruxcelery.telemetry.http.retry import Deadline, RetryPolicy
from cruxcelery.telemetry.http.transport import INGEST_PATH, HttpTransport
from tests.receiver import Receiver, sample_record, sample_records

OVERRUN_S = 0.3  # a deadline may be overrun by scheduling on a loaded 2-core machine, no more


def ids(records: list[dict[str, object]]) -> list[str]:
    return [str(record["recordId"]) for record in records]


def test_posts_the_schema_v5_envelope_as_json(receiver: Receiver) -> None:
    records = sample_records(3)
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    [request] = receiver.requests()
    assert request.path == INGEST_PATH
    assert request.headers["content-type"] == "application/json"
    assert request.payload == {"schemaVersion": 5, "records": records}
    assert report.delivered == 3 and not report.pending


def test_no_request_carries_more_than_50_records(receiver: Receiver) -> None:
    records = sample_records(120, size=300)
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert [len(request.records) for request in receiver.requests()] == [50, 50, 20]
    assert receiver.record_ids() == ids(records) and report.delivered == 120


def test_no_request_body_exceeds_1_mib(receiver: Receiver) -> None:
    records = sample_records(30, size=200_000)
    report = HttpTransport(receiver.url).send(records, timeout_s=5.0)
    sizes = [request.content_length for request in receiver.requests()]
    assert len(sizes) > 1 and max(sizes) <= MAX_BODY_BYTES
    assert receiver.record_ids() == ids(records) and report.delivered == 30


def test_bearer_token_is_sent(receiver: Receiver) -> None:
    HttpTransport(receiver.url, "s3cret").send(sample_records(1), timeout_s=3.0)
    assert receiver.requests()[0].headers["authorization"] == "Bearer s3cret"


def test_no_authorization_header_without_token(receiver: Receiver) -> None:
    HttpTransport(receiver.url).send(sample_records(1), timeout_s=3.0)
    assert "authorization" not in receiver.requests()[0].headers


def test_one_permanently_rejected_record_does_not_block_the_others(receiver: Receiver) -> None:
    records = sample_records(10)
    receiver.reject(str(records[4]["recordId"]), code="invalid_record")
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert report.delivered == 9 and report.rejected == 1 and not report.pending
    assert receiver.record_ids() == ids(records[:4] + records[5:])
    assert len(receiver.requests()) == 1  # a permanent rejection is not retried
    assert "invalid_record" in (report.last_error or "")


def test_retryable_rejection_resends_only_that_record(receiver: Receiver) -> None:
    records = sample_records(10)
    receiver.reject(str(records[7]["recordId"]), code="ingest_unavailable", retryable=True, times=1)
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert report.delivered == 10 and report.retries == 1
    first, second = receiver.requests()
    assert len(first.records) == 10 and ids(second.records) == [records[7]["recordId"]]


def test_503_then_202_delivers_everything(receiver: Receiver) -> None:
    records = sample_records(60)
    receiver.script(503)
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert report.delivered == 60 and not report.pending
    assert sorted(receiver.record_ids()) == sorted(ids(records))
    assert receiver.requests()[0].status == 503


def test_every_retryable_status_is_retried(receiver: Receiver) -> None:
    receiver.script(408, 409, 425, 429, 500, 502)
    fast = RetryPolicy(base_s=0.005)
    report = HttpTransport(receiver.url, policy=fast).send(sample_records(2), timeout_s=3.0)
    assert report.delivered == 2 and report.retries == 6


def test_other_4xx_rejects_the_chunk_without_retry(receiver: Receiver) -> None:
    receiver.script(422)
    report = HttpTransport(receiver.url).send(sample_records(5), timeout_s=3.0)
    assert report.rejected == 5 and report.delivered == 0 and not report.pending
    assert len(receiver.requests()) == 1


def test_2xx_without_dispositions_means_all_accepted(receiver: Receiver) -> None:
    receiver.script(200)
    report = HttpTransport(receiver.url).send(sample_records(4), timeout_s=3.0)
    assert report.delivered == 4 and len(receiver.requests()) == 1


def test_retry_after_is_honoured_within_the_deadline(receiver: Receiver) -> None:
    receiver.script(503, retry_after=0.7)
    report = HttpTransport(receiver.url).send(sample_records(2), timeout_s=3.0)
    first, second = receiver.requests()
    assert report.delivered == 2
    assert second.arrived_at - first.arrived_at >= 0.7


def test_retry_after_beyond_the_deadline_gives_up_in_time(receiver: Receiver) -> None:
    receiver.script(429, retry_after=30)
    started = time.monotonic()
    report = HttpTransport(receiver.url).send(sample_records(3), timeout_s=1.0)
    assert time.monotonic() - started < 1.0 + OVERRUN_S
    assert len(report.pending) == 3 and report.not_before is not None
    assert report.not_before - time.monotonic() > 25


def test_receiver_down_returns_pending_within_the_deadline(down_url: str) -> None:
    started = time.monotonic()
    report = HttpTransport(down_url).send(sample_records(5), timeout_s=1.0)
    assert time.monotonic() - started < 1.0 + OVERRUN_S
    assert len(report.pending) == 5 and report.unreachable and report.requests >= 2


def test_receiver_hanging_returns_pending_within_the_deadline(receiver: Receiver) -> None:
    receiver.hang(10.0, times=5)
    started = time.monotonic()
    report = HttpTransport(receiver.url).send(sample_records(5), timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 1.0 + OVERRUN_S
    assert len(report.pending) == 5 and report.unreachable and "timeout" in (report.last_error or "")


def test_oversized_record_is_dropped_and_counted_the_others_arrive(receiver: Receiver) -> None:
    records = sample_records(4)
    records[1] = sample_record(1, size=MAX_BODY_BYTES + 1)
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert report.oversized == 1 and report.delivered == 3
    assert receiver.record_ids() == ids([records[0], records[2], records[3]])


def test_unserializable_record_is_counted_the_others_arrive(receiver: Receiver) -> None:
    records: list[dict[str, object]] = [sample_record(0), {"recordId": "x", "v": object()}]
    report = HttpTransport(receiver.url).send(records, timeout_s=3.0)
    assert report.invalid == 1 and report.delivered == 1


def test_a_keepalive_connection_the_server_closed_is_replaced_without_losing_a_chunk() -> None:
    """The server answers as if the connection stayed open, then closes it: the next request on
    that connection fails before the server read it, and goes again on a fresh one."""
    import socket
    import threading

    bodies: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as stream:
                length = 0
                while (line := stream.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                bodies.append(stream.read(length))
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")

    threading.Thread(target=serve, daemon=True).start()
    transport = HttpTransport(f"http://127.0.0.1:{port}")
    try:
        reports = [transport.send(sample_records(2), timeout_s=3.0) for _ in range(3)]
    finally:
        listener.close()
        transport.close()
    assert [report.delivered for report in reports] == [2, 2, 2]
    assert len(bodies) == 3 and all(not report.pending for report in reports)


def encoded(records: list[dict[str, object]]) -> list[EncodedRecord]:
    return [encode_record(record) for record in records]


def test_a_body_refused_400_for_one_unreadable_record_delivers_the_others(receiver: Receiver) -> None:
    records = sample_records(10)
    unreadable = EncodedRecord("", b'{"recordId":"rec_bad",')
    batch = [*encoded(records[:6]), unreadable, *encoded(records[6:])]
    report = HttpTransport(receiver.url).send_encoded(batch, Deadline(3.0))
    assert (report.delivered, report.rejected, report.pending) == (10, 1, [])
    assert sorted(receiver.record_ids()) == sorted(ids(records))
    assert all(request.status == 400 for request in receiver.requests() if b"rec_bad" in request.body)


def test_a_body_refused_413_is_split_and_only_the_record_too_large_alone_is_dropped() -> None:
    small, large = sample_records(8, size=500), sample_record(99, size=5000)
    with Receiver(max_body_bytes=4000) as receiver:
        report = HttpTransport(receiver.url).send([*small[:3], large, *small[3:]], timeout_s=3.0)
        assert (report.delivered, report.rejected, report.pending) == (8, 1, [])
        assert sorted(receiver.record_ids()) == sorted(ids(small))


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_configuration_error_keeps_every_record_pending_without_retrying_in_the_send(
    receiver: Receiver, status: int
) -> None:
    receiver.script(status)
    report = HttpTransport(receiver.url).send(sample_records(5), timeout_s=3.0)
    assert report.misconfigured and report.rejected == 0 and len(report.pending) == 5
    assert len(receiver.requests()) == 1


def test_a_configuration_error_is_logged_once_a_minute_with_the_url_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Receiver(token="expected") as receiver:
        transport = HttpTransport(receiver.url, "s3cret-token-value")
        with caplog.at_level(logging.WARNING, logger="cruxcelery.telemetry"):
            for _ in range(3):
                transport.send(sample_records(2), timeout_s=3.0)
        transport.close()
        url = f"{receiver.url}{INGEST_PATH}"
    [warning] = [r.getMessage() for r in caplog.records if "401" in r.getMessage()]
    assert url in warning
    assert "s3cret-token-value" not in caplog.text


def test_a_record_whose_text_rewrites_the_body_never_costs_its_neighbour(receiver: Receiver) -> None:
    neighbour, smuggled = sample_records(2)
    hostile = EncodedRecord("", b'1],"records":[' + encode_record(smuggled).data)  # the body stays JSON
    report = HttpTransport(receiver.url).send_encoded([encode_record(neighbour), hostile], Deadline(3.0))
    assert str(neighbour["recordId"]) in receiver.record_ids()
    assert report.delivered == 2 and not report.pending
