"""The spool forwarder over real Redis and a real devtools server (the one ``cruxcelery dev`` runs,
in a thread): whatever the spool holds (well-formed records, records devtools refuses one by one,
records that are not JSON and make devtools refuse a whole body with 400, entries that are not
spool entries at all), every well-formed record is delivered exactly once and every entry ends
acknowledged, what was dropped counted. Each example drives the forwarder in the test's thread
(``drain``: one pass after another) on a stream of its own."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.group import spool_stats
from cruxcelery.telemetry.spool.stream import build_entry
from tests.properties.helpers import PROPERTY
from tests.telemetry.spoolkit import redis_or_skip, stream_key

UNREADABLE = [b'{"recordId":"rec_unreadable",oops}', b"NaN", b'{"a":1}}', b"\xff\xfe{}", b'{"a":Infinity}',
              b'{"recordId":"rec_x" "runId":"run_x"}', b"", b" ", b'1],"records":[']
"""Record texts that are not one JSON value: devtools refuses the whole body (400), or reads another
body than was meant (the last one closes the records array: fewer dispositions than records)."""
REFUSED = [{"segmentSeq": 0}, {"runId": None}, {"schemaVersion": 4}, {"type": ""}]
"""Changes that make a well-formed record one devtools rejects alone (``invalid_record``)."""
NOT_OBJECTS = [b"1", b'"a string"', b"[]", b"null", b"true"]
"""JSON values that are not records: rejected alone too."""
MALFORMED = [{b"x": b"y"}, {b"d": b"not json"}, {b"d": b'{"records":[]}'}, {b"d": b"[1,2"},
             {b"d": b'[1,"x"]'}, {b"d": b'[{"a":1},oops]'}, {b"d": b'[{"a":1}', b"l": b"7"}]
"""Stream entries that are not spool entries: acknowledged and counted, nothing sent."""

_examples = itertools.count()


@dataclass
class Spool:
    """What one example writes, and what must come of it."""

    entries: list[dict[bytes, bytes]] = field(default_factory=list)
    good: list[str] = field(default_factory=list)  # recordIds devtools must store, once
    dropped: int = 0  # records devtools refuses (alone or, unreadable, by bisection)
    malformed: int = 0


def _record(record_id: str, segment: str, seq: int) -> dict[str, Any]:
    return {"schemaVersion": 5, "recordId": record_id, "type": "span:event", "operationId": "run_props",
            "runId": "run_props", "segmentId": segment, "segmentSeq": seq, "traceId": "c3" * 16,
            "spanId": "d4" * 8, "eventId": f"event_{seq}", "name": "a step", "timestamp": "2026-05-16T18:00:00.000Z",
            "attributes": {"step": seq}}


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


record_kinds = st.one_of(
    st.just(("good", 0)), st.just(("good", 0)), st.just(("good", 0)),
    st.tuples(st.just("refused"), st.integers(0, len(REFUSED) - 1)),
    st.tuples(st.just("not_object"), st.integers(0, len(NOT_OBJECTS) - 1)),
    st.tuples(st.just("unreadable"), st.integers(0, len(UNREADABLE) - 1)),
)
entry_kinds = st.one_of(
    st.tuples(st.just("sliced"), st.lists(record_kinds, min_size=1, max_size=6)),  # what SpoolExporter writes
    st.tuples(st.just("parsed"), st.lists(st.sampled_from([("good", 0), ("refused", 0), ("refused", 2)]),
                                          min_size=1, max_size=4)),  # no lengths field: parsed whole
    st.tuples(st.just("malformed"), st.integers(0, len(MALFORMED) - 1)),
)


def build_spool(kinds: list[tuple[str, Any]]) -> Spool:
    """Stream entries for the drawn kinds, with record ids and segments unique to the example."""
    spool = Spool()
    tag = f"{next(_examples):06d}_{uuid.uuid4().hex[:8]}"
    segment = f"seg_{tag}"
    seq = itertools.count(1)
    for kind, content in kinds:
        if kind == "malformed":
            spool.entries.append(MALFORMED[content])
            spool.malformed += 1
            continue
        encoded: list[bytes] = []
        for record_kind, index in content:
            n = next(seq)
            record = _record(f"rec_{tag}_{n}", segment, n)
            if record_kind == "good":
                spool.good.append(record["recordId"])
                encoded.append(_encode(record))
                continue
            spool.dropped += 1
            if record_kind == "refused":
                encoded.append(_encode({**record, **REFUSED[index]}))
            else:
                encoded.append((NOT_OBJECTS if record_kind == "not_object" else UNREADABLE)[index])
        data, lengths = build_entry(encoded)
        spool.entries.append({b"d": data, b"l": lengths} if kind == "sliced" else {b"d": data})
    return spool


class Devtools:
    """A devtools server for the module, and the records it stored since the last look."""

    def __init__(self, server: DevtoolsServer, api: httpx.Client) -> None:
        self.url = server.url
        self._api = api
        self._after = 0

    def new_record_ids(self) -> list[str]:
        ids: list[str] = []
        while True:
            page = self._api.get("/api/records", params={"after": self._after, "limit": 1000}).json()
            ids += [record["recordId"] for record in page["records"]]
            if page["nextAfter"] == self._after:
                return ids
            self._after = page["nextAfter"]


@pytest.fixture(scope="module")
def devtools() -> Iterator[Devtools]:
    with DevtoolsServer(DevtoolsConfig(db=":memory:")) as server, \
            httpx.Client(base_url=server.url, timeout=10.0) as api:
        yield Devtools(server, api)


@pytest.fixture(scope="module")
def client() -> redis.Redis:
    return redis_or_skip()


@PROPERTY
@given(kinds=st.lists(entry_kinds, max_size=8), max_records=st.sampled_from([1, 3, 50]),
       batch_entries=st.sampled_from([1, 3, 100]))
def test_every_well_formed_record_is_delivered_exactly_once_and_every_entry_acknowledged(
    devtools: Devtools, client: redis.Redis, kinds: list[tuple[str, Any]], max_records: int, batch_entries: int,
) -> None:
    spool = build_spool(kinds)
    with stream_key(client) as key:
        for entry in spool.entries:
            client.xadd(key, entry)  # type: ignore[arg-type]
        transport = HttpTransport(devtools.url, max_records=max_records)
        forwarder = Forwarder(client, key, transport, batch_entries=batch_entries, concurrency=1)
        try:
            assert forwarder.drain(10.0)
        finally:
            transport.close()
        stats = spool_stats(client, key)
        assert (stats.pending, stats.unread) == (0, 0), "an entry was left unacknowledged"
    assert sorted(devtools.new_record_ids()) == sorted(spool.good)
    assert forwarder.stats.delivered == len(spool.good), "delivered once each, and nothing else delivered"
    assert (forwarder.stats.rejected, forwarder.stats.malformed) == (spool.dropped, spool.malformed)
