"""The runtime's own HTTP exporter delivers to a real devtools server, and every record is accepted."""

from __future__ import annotations

import time

import httpx

from cruxcelery.devtools.server import DevtoolsServer
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.http.transport import HttpTransport
from cruxcelery.telemetry.records import validate_record
from tests.devtools.helpers import RunBuilder, stored_records


def a_run_of(spans: int) -> list[dict[str, object]]:
    run = RunBuilder("plan research")
    now = time.time()
    records = [run.start(), run.span_start("0" * 15 + "1", "plan research", now)]
    for i in range(spans):
        span_id = f"{i + 2:016x}"
        records += [run.span_start(span_id, f"step {i}", now, parent="0" * 15 + "1"),
                    run.artifact(span_id, "output", now, {"i": i}), run.span_end(span_id, now + 0.001, now)]
    return [*records, run.span_end("0" * 15 + "1", now + 1, now), run.end(now + 1)]


def test_the_http_exporter_delivers_every_record_and_none_is_rejected(devtools: DevtoolsServer,
                                                                     api: httpx.Client) -> None:
    records = a_run_of(100)  # 304 records: several requests of at most 50
    for record in records:
        validate_record(record)  # the runtime's own model: these are records the runtime could emit
    exporter = HttpExporter(HttpTransport(devtools.url))
    try:
        exporter.export(records)
        result = exporter.flush(10.0)
    finally:
        exporter.shutdown(5.0)
    assert (result.status, result.delivered, result.rejected, result.dropped) == ("drained", len(records), 0, 0)
    assert stored_records(api) == records


def test_the_exporter_with_a_token_delivers_to_a_guarded_server() -> None:
    from cruxcelery.devtools.api import DevtoolsConfig

    records = a_run_of(3)
    with DevtoolsServer(DevtoolsConfig(token="tok")) as server:
        exporter = HttpExporter(HttpTransport(server.url, "tok"))
        try:
            exporter.export(records)
            result = exporter.flush(10.0)
        finally:
            exporter.shutdown(5.0)
    assert (result.status, result.delivered, result.rejected) == ("drained", len(records), 0)
