"""Ingest over HTTP: status codes, dispositions, retryable unavailability, tokens."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cruxcelery.devtools.api import MAX_BODY_BYTES, DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import RunBuilder, identity, post, stored_records

INGEST = "/api/observability/records"
JSON = {"content-type": "application/json"}


def test_an_unknown_record_type_is_stored_raw_and_counted(api: httpx.Client) -> None:
    run = RunBuilder()
    future = {**run.record("future:thing"), "futureField": {"nested": [1, 2]}}
    response = post(api, [run.start(), future])
    assert [d["outcome"] for d in response.json()["dispositions"]] == ["accepted", "accepted"]
    assert response.json()["unknownRecordTypes"] == 1
    assert stored_records(api)[1] == future
    assert api.get("/api/stats").json()["unknownRecordTypes"] == 1
    assert api.get(f"/api/runs/{run.run_id}").json()["run"]["unknownRecords"] == 1


def test_raw_records_come_back_byte_for_byte(api: httpx.Client) -> None:
    run = RunBuilder()
    record_text = json.dumps(run.start(), indent=3, ensure_ascii=False).replace('"test run"', '"t\\u00e9st \u2603"')
    body = '{ "records" : [ ' + record_text + ' ] , "schemaVersion" : 5 }'
    assert api.post(INGEST, content=body.encode(), headers=JSON).status_code == 202
    raw = api.get(f"/api/runs/{run.run_id}/records").text
    assert record_text in raw


def test_a_record_failing_base_identity_is_rejected_invalid_and_the_rest_stored(api: httpx.Client) -> None:
    run = RunBuilder()
    bad = {**run.start(), "segmentSeq": 0}
    good = run.record("span:event", spanId="00000000000000aa", eventId="event_0000000000000001", name="x",
                      timestamp="2026-05-16T18:00:00.000Z")
    dispositions = post(api, [bad, "not an object", good]).json()["dispositions"]
    assert [(d["index"], d["outcome"], d["code"], d["retryable"]) for d in dispositions] == [
        (0, "rejected", "invalid_record", False), (1, "rejected", "invalid_record", False),
        (2, "accepted", None, False),
    ]
    assert dispositions[0]["recordId"] == bad["recordId"]
    assert [identity(r) for r in stored_records(api)] == [identity(good)]


def test_another_record_in_a_taken_segment_slot_is_a_sequence_conflict(api: httpx.Client) -> None:
    run = RunBuilder()
    first = run.start()
    rival = {**first, "recordId": "rec_00000000000000ff_1"}
    dispositions = post(api, [first, rival]).json()["dispositions"]
    assert [(d["outcome"], d["code"]) for d in dispositions] == [
        ("accepted", None), ("rejected", "segment_sequence_conflict")]


def test_a_wrong_batch_schema_version_is_422(api: httpx.Client) -> None:
    response = api.post(INGEST, json={"schemaVersion": 4, "records": []})
    assert response.status_code == 422


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"schemaVersion": 5}', b'{"schemaVersion": 5, "records": {}}'])
def test_a_body_that_is_not_a_batch_is_400(api: httpx.Client, body: bytes) -> None:
    assert api.post(INGEST, content=body, headers=JSON).status_code == 400


def body_of_size(size: int) -> bytes:
    """A valid one-record batch of exactly ``size`` bytes."""
    record = RunBuilder().artifact("00000000000000aa", "output", time.time(), "")
    empty = len(json.dumps({"schemaVersion": 5, "records": [record]}).encode())
    record["preview"] = "x" * (size - empty)
    body = json.dumps({"schemaVersion": 5, "records": [record]}).encode()
    assert len(body) == size
    return body


def test_a_body_of_exactly_one_mebibyte_is_read(api: httpx.Client) -> None:
    assert api.post(INGEST, content=body_of_size(MAX_BODY_BYTES), headers=JSON).status_code == 202


def test_a_body_over_one_mebibyte_is_413(api: httpx.Client) -> None:
    assert api.post(INGEST, content=body_of_size(MAX_BODY_BYTES + 1), headers=JSON).status_code == 413


def test_a_streamed_body_without_length_is_cut_at_one_mebibyte(api: httpx.Client) -> None:
    body = body_of_size(MAX_BODY_BYTES + 1)

    def chunks() -> Iterator[bytes]:
        yield body[:1000]
        yield body[1000:]

    assert api.post(INGEST, content=chunks(), headers=JSON).status_code == 413


@pytest.fixture()
def file_server(tmp_path: Path) -> Iterator[DevtoolsServer]:
    with DevtoolsServer(DevtoolsConfig(db=tmp_path / "devtools.sqlite3", busy_timeout_s=0.05)) as server:
        yield server


def test_a_locked_database_rejects_records_retryable_with_retry_after(file_server: DevtoolsServer) -> None:
    run = RunBuilder()
    records = [run.start(), run.end(time.time())]
    blocker = sqlite3.connect(file_server.app.state.service.db.path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with httpx.Client(base_url=file_server.url) as client:
            response = post(client, records)
            assert response.status_code == 202
            assert response.headers["retry-after"] == "1"
            assert [(d["code"], d["retryable"]) for d in response.json()["dispositions"]] == [
                ("ingest_unavailable", True)] * 2
            blocker.execute("ROLLBACK")
            retried = post(client, records).json()["dispositions"]
            assert [d["outcome"] for d in retried] == ["accepted", "accepted"]
    finally:
        blocker.close()


def test_the_database_file_is_in_wal_mode(file_server: DevtoolsServer) -> None:
    with httpx.Client(base_url=file_server.url) as client:
        assert client.get("/api/stats").json()["journalMode"] == "wal"


@pytest.fixture()
def guarded() -> Iterator[DevtoolsServer]:
    with DevtoolsServer(DevtoolsConfig(token="s3cret")) as server:
        yield server


def test_with_a_token_ingest_and_ui_need_it(guarded: DevtoolsServer) -> None:
    run = RunBuilder()
    body = {"schemaVersion": 5, "records": [run.start()]}
    with httpx.Client(base_url=guarded.url) as client:
        assert client.post(INGEST, json=body).status_code == 401
        assert client.post(INGEST, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post(INGEST, json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 202
        assert client.get("/").status_code == 401
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/health").status_code == 200


def test_a_browser_presents_the_token_once_and_keeps_it_in_a_cookie(guarded: DevtoolsServer) -> None:
    with httpx.Client(base_url=guarded.url) as client:
        page = client.get("/", params={"token": "s3cret"})
        assert page.status_code == 200 and "cruxcelery devtools" in page.text
        assert client.get("/api/runs").status_code == 200  # the cookie set by the page
