"""Whatever ingest accepts reads back, and one run never takes another down: a record ingest could
not read back (a time past year 9999 or before year 1 in UTC, a number JSON readers cannot hold)
is rejected ``invalid_record``; a stored record that cannot be read (a database written before
these checks) degrades its own run only."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import RunBuilder, post

INGEST = "/api/observability/records"


def _disposition(response: httpx.Response, index: int = 0) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    disposition: dict[str, Any] = response.json()["dispositions"][index]
    return disposition


def test_a_run_end_past_year_9999_in_utc_is_rejected_and_the_run_list_still_answers(api: httpx.Client) -> None:
    run = RunBuilder()
    end = {**run.end(time.time()), "endedAt": "9999-12-31T23:59:59.999-23:59"}  # year 10000 in UTC
    disposition = _disposition(post(api, [run.start(), end]), 1)
    assert (disposition["outcome"], disposition["code"], disposition["retryable"]) == \
        ("rejected", "invalid_record", False)
    assert "endedAt" in disposition["message"]
    listed = api.get("/api/runs")
    assert listed.status_code == 200, listed.text
    assert [r["runId"] for r in listed.json()["runs"]] == [run.run_id]


def test_a_run_start_before_year_1_in_utc_is_rejected(api: httpx.Client) -> None:
    run = RunBuilder()
    start = {**run.start(), "startedAt": "0001-01-01T00:00:00.000+00:01"}  # year 0 in UTC
    disposition = _disposition(post(api, [start]))
    assert (disposition["outcome"], disposition["code"]) == ("rejected", "invalid_record")
    assert api.get(f"/api/runs/{run.run_id}").status_code == 404


def test_a_number_too_large_for_a_double_is_rejected_from_a_pretty_printed_body(api: httpx.Client) -> None:
    run = RunBuilder()
    body = json.dumps({"schemaVersion": 5, "records": [run.start(attributes={"huge": 1})]}, indent=2)
    response = api.post(INGEST, content=body.replace('"huge": 1', '"huge": 1e400'),
                        headers={"content-type": "application/json"})
    disposition = _disposition(response)
    assert (disposition["outcome"], disposition["code"]) == ("rejected", "invalid_record")
    assert api.get("/api/runs").status_code == 200


def _poison(path: Path, run_id: str, replace: tuple[str, str]) -> None:
    """Rewrite one stored record of ``run_id`` as an older server might have stored it."""
    with sqlite3.connect(path) as conn:
        seq, raw = conn.execute("SELECT seq, raw FROM records WHERE run_id = ? AND type = 'run:end'",
                                (run_id,)).fetchone()
        assert replace[0] in raw
        conn.execute("UPDATE records SET raw = ? WHERE seq = ?", (raw.replace(*replace), seq))
        conn.execute("UPDATE runs SET dirty = 1 WHERE run_id = ?", (run_id,))


def _ended_run(api: httpx.Client) -> RunBuilder:
    run = RunBuilder()
    now = time.time()
    assert post(api, [run.start(), run.end(now, status="ok")]).json()["accepted"] == 2
    return run


def test_a_stored_record_past_year_9999_degrades_its_own_run_and_no_other(tmp_path: Path) -> None:
    db = tmp_path / "devtools.sqlite3"
    with DevtoolsServer(DevtoolsConfig(db=db)) as server, httpx.Client(base_url=server.url) as api:
        bad, good = _ended_run(api), _ended_run(api)
    _poison(db, bad.run_id, ('"endedAt":"', '"endedAt":"9999-12-31T23:59:59.999-23:59","was":"'))
    with DevtoolsServer(DevtoolsConfig(db=db, pass_interval_s=0.05)) as server, \
            httpx.Client(base_url=server.url) as api:
        listed = api.get("/api/runs")
        assert listed.status_code == 200, listed.text
        assert {r["runId"] for r in listed.json()["runs"]} == {bad.run_id, good.run_id}
        detail = api.get(f"/api/runs/{bad.run_id}")
        assert detail.status_code == 200, detail.text
        assert api.get(f"/api/runs/{good.run_id}").json()["run"]["status"] == "ok"


def test_a_stored_number_json_readers_refuse_degrades_its_own_run_and_no_other(tmp_path: Path) -> None:
    db = tmp_path / "devtools.sqlite3"
    with DevtoolsServer(DevtoolsConfig(db=db)) as server, httpx.Client(base_url=server.url) as api:
        bad, good = _ended_run(api), _ended_run(api)
    _poison(db, bad.run_id, ('"durationMs":', '"huge":1e400,"durationMs":'))
    with DevtoolsServer(DevtoolsConfig(db=db)) as server, httpx.Client(base_url=server.url) as api:
        listed = api.get("/api/runs")
        assert listed.status_code == 200, listed.text
        detail = api.get(f"/api/runs/{bad.run_id}")
        assert detail.status_code == 200, detail.text
        assert any(d["code"] == "unreadable_record" for d in detail.json()["diagnostics"])
        assert api.get(f"/api/runs/{good.run_id}").status_code == 200


def test_the_reconciliation_pass_goes_on_past_a_run_it_cannot_read(tmp_path: Path) -> None:
    db = tmp_path / "devtools.sqlite3"
    with DevtoolsServer(DevtoolsConfig(db=db)) as server, httpx.Client(base_url=server.url) as api:
        bad, good = _ended_run(api), _ended_run(api)
    _poison(db, bad.run_id, ('"endedAt":"', '"endedAt":"9999-12-31T23:59:59.999-23:59","was":"'))
    with sqlite3.connect(db) as conn:  # the good run's cached status is stale: only a pass can fix it
        conn.execute("UPDATE runs SET dirty = 1, status = 'running' WHERE run_id = ?", (good.run_id,))
    with DevtoolsServer(DevtoolsConfig(db=db, pass_interval_s=0.05)) as server:
        service = server.app.state.service
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with service.db.read() as conn:
                dirty = conn.execute("SELECT COUNT(*) FROM runs WHERE dirty = 1").fetchone()[0]
            if dirty == 0:
                break
            time.sleep(0.05)
        with service.db.read() as conn:
            statuses = dict(conn.execute("SELECT run_id, status FROM runs").fetchall())
    assert statuses[good.run_id] == "ok"
    assert dirty == 0


def test_spans_that_are_each_other_s_parent_do_not_hang_reads(api: httpx.Client) -> None:
    run = RunBuilder()
    at = time.time()
    first = run.span_start("00000000000000aa", "a", at, parent="00000000000000bb")
    second = run.span_start("00000000000000bb", "b", at, parent="00000000000000aa")
    assert post(api, [run.start(), first, second]).json()["accepted"] == 3
    detail = api.get(f"/api/runs/{run.run_id}", timeout=5.0)
    assert detail.status_code == 200
    assert {s["spanId"] for s in detail.json()["spans"]} == {"00000000000000aa", "00000000000000bb"}
    assert api.get("/api/runs", timeout=5.0).status_code == 200
