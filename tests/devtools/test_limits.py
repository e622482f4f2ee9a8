"""Bounded memory: at most 1,000 records per request (Crux's senders send at most 50), pages of
``/api/records`` bounded in bytes, the run detail caches bounded in bytes; and a paging number
past what the database holds is a 400, not a 500."""

from __future__ import annotations

import json
import time

import httpx

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.batch import MAX_RECORDS
from cruxcelery.devtools.queries import MAX_PAGE_BYTES
from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import RunBuilder, post, stored_records

INGEST = "/api/observability/records"
JSON = {"content-type": "application/json"}


def test_a_mebibyte_of_empty_records_is_refused_413_with_a_short_answer(api: httpx.Client) -> None:
    body = b'{"schemaVersion":5,"records":[' + b",".join([b"{}"] * 349_512) + b"]}"
    response = api.post(INGEST, content=body, headers=JSON)
    assert response.status_code == 413
    assert f"at most {MAX_RECORDS}" in response.json()["error"]
    assert len(response.content) < 1000


def test_a_pretty_printed_batch_over_the_record_limit_is_refused_413(api: httpx.Client) -> None:
    run = RunBuilder()
    body = json.dumps({"schemaVersion": 5, "records": [run.start() for _ in range(MAX_RECORDS + 1)]}, indent=1)
    assert api.post(INGEST, content=body, headers=JSON).status_code == 413
    assert api.get("/api/stats").json()["records"] == 0


def test_a_batch_at_the_record_limit_is_answered_per_record(api: httpx.Client) -> None:
    response = post(api, [{}] * MAX_RECORDS)
    assert response.status_code == 202
    assert response.json()["rejected"] == MAX_RECORDS


def _big_records(api: httpx.Client, run: RunBuilder, count: int, size: int) -> None:
    for _ in range(count):
        record = run.artifact("00000000000000aa", "output", time.time(), "x" * size)
        assert post(api, [record]).json()["accepted"] == 1


def test_a_page_of_records_is_bounded_in_bytes_and_paging_reaches_every_record(api: httpx.Client) -> None:
    run = RunBuilder()
    assert post(api, [run.start()]).json()["accepted"] == 1
    _big_records(api, run, 12, 1000 * 1000)
    page = api.get("/api/records", params={"after": 0, "limit": 10_000})
    assert page.status_code == 200
    assert len(page.content) <= MAX_PAGE_BYTES + 1024 * 1024  # the last record may cross the bound
    assert 0 < len(page.json()["records"]) < 13
    assert len(stored_records(api)) == 13


def test_the_run_detail_caches_stay_under_their_byte_bound() -> None:
    bound = 2 * 1000 * 1000
    with DevtoolsServer(DevtoolsConfig(detail_cache_bytes=bound)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as api:
        runs = [RunBuilder() for _ in range(4)]
        for run in runs:
            assert post(api, [run.start()]).json()["accepted"] == 1
            _big_records(api, run, 3, 300 * 1000)
        for run in runs:
            assert api.get(f"/api/runs/{run.run_id}").status_code == 200
            parsed, views = server.app.state.service.cached_bytes
            assert parsed <= bound
            assert views <= bound
        assert api.get(f"/api/runs/{runs[0].run_id}").status_code == 200  # dropped from the caches, read again


def test_records_after_a_number_past_64_bits_is_400(api: httpx.Client) -> None:
    response = api.get("/api/records", params={"after": 10**30})
    assert response.status_code == 400
    assert "after" in response.json()["error"]


def test_records_with_a_huge_limit_is_a_bounded_page(api: httpx.Client) -> None:
    assert api.get("/api/records", params={"after": 0, "limit": 10**30}).status_code == 200
