"""The devtools ingest endpoint, over real HTTP (the server ``cruxcelery dev`` runs, in a thread):
any body, any record. The answer is 202 with one disposition per record, or 400 / 413 / 422 for a
body that is not a batch; never a 5xx, never a hang. A run an accepted record belongs to can be
read back (its detail and its raw records), and the server keeps answering."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from cruxcelery.devtools.api import MAX_BODY_BYTES, DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.properties.helpers import PROPERTY, SURROGATES, hostile_text, json_values, mostly

INGEST = "/api/observability/records"
TYPES = ["run:start", "run:suspend", "run:resume", "run:end", "span:start", "span:end", "span", "span:event",
         "artifact", "edge", "future:type"]


class _Errors(logging.Handler):
    """Errors the server logs (its 1 s reconciliation pass, a failed request): none are allowed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()} {record.exc_info[1] if record.exc_info else ''}")


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    errors = _Errors()
    loggers = [logging.getLogger(name) for name in ("cruxcelery.devtools", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        with DevtoolsServer(DevtoolsConfig(db=":memory:", pass_interval_s=0.2)) as server, \
                httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client
            time.sleep(0.3)  # one more reconciliation pass over what the last examples stored
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    assert not errors.seen, errors.seen[:3]


def _record(run: int, seq: int, type_: str) -> dict[str, Any]:
    """A well-formed record to spoil (ids derived from the example, so runs repeat and collide)."""
    run_id = f"run_{run % 16**24:024x}"
    return {"schemaVersion": 5, "recordId": f"rec_{run:016x}_{seq}", "type": type_, "operationId": run_id,
            "runId": run_id, "segmentId": f"seg_{run % 16**24:024x}", "segmentSeq": seq, "traceId": f"{run:032x}",
            "spanId": f"{seq:016x}", "name": "a span", "primitive": "custom.operation", "family": "custom",
            "startedAt": "2026-05-16T18:00:00.000Z", "status": "running", "attributes": {}}


hostile_scalars = st.one_of(
    st.sampled_from([0, -1, 1.5, -0.0, 1e308, True, False, None, "", "x" * 300, 2**63, 2**64, -(2**63) - 1, [],
                     {}, [1, "a"], {"a": {"b": None}}, "2026-13-45T99:99:99.999Z", "not a time", *SURROGATES]),
    hostile_text, st.integers(), st.floats(allow_nan=False),
)
"""Field values that spoil a record: wrong types, huge integers, lone surrogates, bad times (cheap to
draw: records hold many of them)."""
FIELDS = ["schemaVersion", "recordId", "runId", "operationId", "segmentId", "segmentSeq", "traceId", "type",
          "spanId", "parentSpanId", "name", "primitive", "family", "status", "startedAt", "endedAt", "timestamp",
          "attributes", "error", "preview", "durationMs", "flowId", "kind", "reason", "eventId", "artifactId",
          "sizeBytes", "toRunId", "fromRunId", "deadlineAt", "rootPrimitive", "parentRunId"]


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(hostile_scalars, st.lists(hostile_scalars, max_size=3)))
    run = draw(mostly(st.integers(100, 2**64), st.integers(0, 40)))  # mostly fresh runs, some shared (conflicts)
    record = _record(run, draw(st.integers(1, 6)), draw(st.sampled_from(TYPES)))
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            record.pop(field, None)
        else:
            record[field] = draw(st.one_of(hostile_scalars, st.dictionaries(hostile_text, hostile_scalars, max_size=2)))
    return record


def _dumps(value: Any, style: int) -> bytes:
    """JSON in the shapes producers send: compact (the ingest fast path), spaced, or ASCII-escaped
    (the only way a lone surrogate travels)."""
    if style == 0:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    elif style == 1:
        text = json.dumps(value, indent=1)
    else:
        return json.dumps(value, separators=(",", ":")).encode("ascii")
    return text.encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(mostly(st.just("batch"), st.sampled_from(["bytes", "json", "version", "cut", "big", "deep"])))
    style = draw(st.integers(0, 2))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return _dumps(draw(st.one_of(json_values, st.dictionaries(st.sampled_from(["schemaVersion", "records"]),
                                                                  json_values))), style)
    if kind == "deep":
        depth = draw(st.integers(100, 100_000))
        return b'{"schemaVersion":5,"records":[' + b"[" * depth + b"]" * depth + b"]}"
    batch: dict[str, Any] = {"schemaVersion": 5, "records": draw(st.lists(records(), max_size=5))}
    if kind == "version":
        batch["schemaVersion"] = draw(hostile_scalars)
    if kind == "big":
        batch["padding"] = "p" * draw(st.integers(MAX_BODY_BYTES - 2000, MAX_BODY_BYTES + 2000))
    body = _dumps(batch, style)
    if kind == "cut":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    return body


@given(body=bodies())
@example(body=b'{"schemaVersion":5,"records":[' + json.dumps(
    {**_record(1, 1, "run:start"), "name": "lone \ud800"}).encode() + b"]}")  # a surrogate reaches SQLite
@example(body=b'{"schemaVersion":5,"records":[' + json.dumps(
    {**_record(2, 2**63, "span:start")}).encode() + b"]}")  # a segmentSeq SQLite cannot hold
@example(body=b'{"schemaVersion":5,"records":[' + json.dumps(
    {**_record(3, 1, "span:end"), "durationMs": 1e308, "endedAt": "9999-99-99T99:99:99.999Z"}).encode() + b"]}")
@example(body=b'{"schemaVersion":5,"records":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}")
@example(body=b"\xff\xfe")
@PROPERTY
def test_ingest_answers_every_body_with_a_disposition_per_record_and_never_a_5xx(
        api: httpx.Client, body: bytes) -> None:
    response = api.post(INGEST, content=body, headers={"content-type": "application/json"})
    event(str(response.status_code))
    assert response.status_code in (202, 400, 413, 422), f"{response.status_code}: {response.text[:300]}"
    if response.status_code != 202:
        assert "error" in response.json()
        return
    answer = response.json()
    sent = json.loads(body)["records"]
    assert [d["index"] for d in answer["dispositions"]] == list(range(len(sent)))
    readable = None
    for disposition, record in zip(answer["dispositions"], sent, strict=True):
        assert disposition["outcome"] in ("accepted", "rejected")
        if disposition["outcome"] == "rejected":
            assert disposition["code"] in ("invalid_record", "record_id_conflict", "segment_sequence_conflict")
            continue
        event(f"accepted {record['type'] if record.get('type') in TYPES else 'other type'}")
        # what the server keeps of it: a lone surrogate becomes U+FFFD, as Go's JSON decoder does
        run_id = re.sub("[\ud800-\udfff]", "\ufffd", record["runId"])
        if "/" not in run_id and run_id.strip(".") and run_id.strip() == run_id:  # a URL path segment
            readable = run_id
    if readable is not None:  # one run per example, its detail (reconciled from its raw records): reading costs
        path = f"/api/runs/{quote(readable, safe='')}"
        read = api.get(path, params={"infrastructure": "true"})
        assert read.status_code == 200, f"GET {path}: {read.status_code} {read.text[:300]}"

def test_after_the_property_every_stored_record_reads_back_as_json(api: httpx.Client) -> None:
    """The raw records the property left (lone surrogates replaced, nothing else changed) page out of
    ``/api/records`` as JSON, and the server still answers."""
    after, count = 0, 0
    while True:
        page = api.get("/api/records", params={"after": after, "limit": 500})
        assert page.status_code == 200, page.text[:300]
        body = page.json()
        if not body["records"]:
            break
        count += len(body["records"])
        after = body["nextAfter"]
    assert count > 100
    assert api.get("/api/health").json() == {"ok": True}
