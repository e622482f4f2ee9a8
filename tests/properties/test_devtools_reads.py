"""Whatever devtools accepts reads back: for any batch, every read endpoint (the run list, each
accepted run's detail and raw records, search, the record feed) answers 2xx, over real HTTP.
Batches carry valid ISO 8601 times anywhere from year 1 to 9999 with any offset (some past the
ends in UTC), huge durations and lease times, and numbers a double cannot hold (``1e400``, in
pretty-printed bodies: the slow decoder path)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.properties.helpers import PROPERTY, json_values

INGEST = "/api/observability/records"
HUGE = "__huge_number__"
EDGES = ["9999-12-31T23:59:59.999-23:59", "0001-01-01T00:00:00.000+00:01", "9999-12-31T23:59:59.999Z",
         "0001-01-01T00:00:00.000Z", "2026-05-16T18:00:00.000Z", "not a time", ""]


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with DevtoolsServer(DevtoolsConfig(db=":memory:", pass_interval_s=0.2)) as server, \
            httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


@st.composite
def times(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(EDGES))
    at = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    offset = draw(st.integers(-1439, 1439))
    sign, minutes = ("+" if offset >= 0 else "-"), abs(offset)
    zone = draw(st.sampled_from(["Z", f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"]))
    return at.isoformat(timespec="milliseconds") + zone


numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70), st.just(HUGE))
TYPES = ["run:start", "run:end", "run:suspend", "run:resume", "span:start", "span:end", "span", "span:event",
         "artifact", "edge", "future:type"]
SPANS = ["00000000000000aa", "00000000000000bb", "00000000000000cc"]


@st.composite
def records(draw: st.DrawFn, run: int, seq: int) -> dict[str, Any]:
    type_ = draw(st.sampled_from(TYPES))
    run_id = f"run_{run:024x}"
    record: dict[str, Any] = {
        "schemaVersion": 5, "recordId": f"rec_{run:016x}_{seq}", "type": type_, "runId": run_id,
        "operationId": run_id, "segmentId": f"seg_{run:024x}", "segmentSeq": seq, "traceId": f"{run:032x}",
        "spanId": draw(st.sampled_from(SPANS)), "parentSpanId": draw(st.sampled_from([None, *SPANS])),
        "name": "step", "primitive": "custom.operation", "status": draw(st.sampled_from(["ok", "error", "running"])),
    }
    for key in draw(st.lists(st.sampled_from(["startedAt", "endedAt", "timestamp", "createdAt", "suspendedAt",
                                              "resumedAt"]), max_size=3)):
        record[key] = draw(times())
    if draw(st.booleans()):
        record["durationMs"] = draw(numbers)
    attributes = draw(st.dictionaries(st.sampled_from(["a", "leaseExpiresAt", "deadlineAt", "flowId"]),
                                      st.one_of(times(), numbers, json_values), max_size=3))
    record["attributes"] = attributes
    if type_ == "span:event":
        record["name"] = draw(st.sampled_from(["progress", "boundary.requested", "boundary.heartbeat", "exception"]))
    if type_ == "artifact":
        record.update(artifactId=f"art_{seq:016x}", kind="output", preview=draw(st.one_of(json_values, numbers)))
    if type_ == "edge":
        record.update(kind="scheduled", fromRunId=f"run_{run + 1:024x}", toRunId=run_id)
    return record


@st.composite
def batches(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    base = draw(st.integers(0, 2**60)) * 4
    sent = [draw(records(base + draw(st.integers(0, 2)), seq)) for seq in range(1, draw(st.integers(1, 8)) + 1)]
    batch = {"schemaVersion": 5, "records": sent}
    text = json.dumps(batch, indent=draw(st.sampled_from([None, 1])))
    huge = draw(st.sampled_from(["1e400", "-1e400", "1e-400", "1e308"]))
    return text.replace(f'"{HUGE}"', huge).encode(), sent


def _ok(response: httpx.Response) -> None:
    assert 200 <= response.status_code < 300, f"{response.request.url}: {response.status_code} {response.text[:300]}"


@given(batch=batches())
@example(batch=(json.dumps({"schemaVersion": 5, "records": [
    {"schemaVersion": 5, "recordId": "rec_x_1", "type": "run:end", "runId": "run_x", "segmentId": "seg_x",
     "segmentSeq": 1, "endedAt": "9999-12-31T23:59:59.999-23:59"}]}).encode(), []))
@example(batch=(json.dumps({"schemaVersion": 5, "records": [
    {"schemaVersion": 5, "recordId": "rec_y_1", "type": "span:end", "runId": "run_y", "segmentId": "seg_y",
     "segmentSeq": 1, "spanId": "00000000000000aa", "endedAt": "2026-05-16T18:00:00.000Z", "durationMs": 1e308}]},
    indent=1).encode(), []))
@PROPERTY
def test_every_read_answers_2xx_for_any_batch_devtools_accepts(api: httpx.Client,
                                                               batch: tuple[bytes, list[dict[str, Any]]]) -> None:
    body, _sent = batch
    before = api.get("/api/records", params={"after": 0, "limit": 1}).json()
    response = api.post(INGEST, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text[:300]
    accepted_runs = {json.loads(body)["records"][d["index"]]["runId"]
                     for d in response.json()["dispositions"] if d["outcome"] == "accepted"}
    _ok(api.get("/api/runs"))
    for run_id in sorted(accepted_runs):
        path = f"/api/runs/{quote(run_id, safe='')}"
        _ok(api.get(path, params={"infrastructure": "true"}))
        _ok(api.get(path + "/records"))
    _ok(api.get("/api/search", params={"q": "step"}))
    _ok(api.get("/api/records", params={"after": before["nextAfter"]}))
