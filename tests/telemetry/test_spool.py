"""SpoolExporter against a real Redis: one stream entry per flush, bounded, durable; Redis down never
hurts the caller."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cruxcelery.telemetry.exporter import RecordExporter
from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES
from cruxcelery.telemetry.spool.group import DEFAULT_GROUP, ensure_group, read_new, spool_stats
from cruxcelery.telemetry.spool.stream import ENTRY_MAX_RECORDS, SpoolExporter, decode_entry, spool_client
from tests.receiver import free_port, sample_record, sample_records
from tests.telemetry.spoolkit import RedisProxy, eventually, redis_or_skip, stream_key


@pytest.fixture()
def client() -> redis.Redis:
    return redis_or_skip()


@pytest.fixture()
def key(client: redis.Redis) -> Iterator[str]:
    with stream_key(client) as name:
        yield name


def entries(client: redis.Redis, key: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(key)]


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(record["recordId"]) for record in records]


def test_is_a_record_exporter(client: redis.Redis, key: str) -> None:
    assert isinstance(SpoolExporter(client, key), RecordExporter)


def test_a_flush_appends_one_entry_holding_every_record_exported_before_it(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    records = sample_records(8)
    for record in records:
        exporter.export([record])
    result = exporter.flush(1.0)
    assert (result.status, result.delivered, result.remaining) == ("drained", 8, 0)
    (fields,) = entries(client, key)
    decoded = decode_entry(fields)
    assert decoded is not None and [record.record_id for record in decoded] == ids(records)


def test_the_entry_data_is_a_json_array_of_the_records(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    records = sample_records(3)
    exporter.export(records)
    exporter.flush(1.0)
    (fields,) = entries(client, key)
    assert json.loads(fields[b"d"]) == records


def test_export_takes_a_snapshot_of_the_record(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    record = sample_record(0)
    exporter.export([record])
    record["name"] = "mutated after export"
    exporter.flush(1.0)
    (fields,) = entries(client, key)
    assert json.loads(fields[b"d"])[0]["name"] == "generation.step"


def test_a_flush_with_nothing_buffered_writes_nothing(client: redis.Redis, key: str) -> None:
    result = SpoolExporter(client, key).flush(1.0)
    assert result.status == "drained" and client.exists(key) == 0


def test_the_stream_is_bounded_by_max_entries(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key, max_entries=5, approximate=False)
    for n in range(12):
        exporter.export([sample_record(n)])
        exporter.flush(1.0)
    assert client.xlen(key) == 5


def test_entries_trimmed_before_the_group_read_them_are_counted_exactly(client: redis.Redis, key: str) -> None:
    ensure_group(client, key)
    exporter = SpoolExporter(client, key, max_entries=5, approximate=False)
    for n in range(12):
        exporter.export([sample_record(n)])
        exporter.flush(1.0)
    first = read_new(client, key, DEFAULT_GROUP, "reader", 2)
    assert first.trimmed == 7 and len(first.entries) == 2
    for n in range(12, 18):  # 6 more: the 5 last stay, so the 3 unread left and 1 new one go
        exporter.export([sample_record(n)])
        exporter.flush(1.0)
    second = read_new(client, key, DEFAULT_GROUP, "reader", 100)
    assert second.trimmed == 4 and len(second.entries) == 5
    stats = spool_stats(client, key)
    assert (stats.trimmed_unread, stats.unread, stats.pending) == (11, 0, 7)


def test_redis_down_flush_fails_keeps_the_records_and_never_raises() -> None:
    exporter = SpoolExporter(spool_client(f"redis://127.0.0.1:{free_port()}/9"), "test:down")
    exporter.export(sample_records(8))
    result = exporter.flush(1.0)
    assert (result.status, result.delivered, result.remaining) == ("failed", 0, 8)
    health = exporter.source_health()
    assert health["buffered"] == 8 and health["errors"] == 1 and health["breaker"] == "open"


def test_after_a_failed_write_flushes_skip_redis_until_the_probe_is_due() -> None:
    breaker = CircuitBreaker(probe_base_s=60.0)
    exporter = SpoolExporter(spool_client(f"redis://127.0.0.1:{free_port()}/9"), "test:down", breaker=breaker)
    for record in sample_records(5):
        exporter.export([record])
        assert exporter.flush(1.0).status == "failed"
    assert exporter.source_health()["errors"] == 1  # only the first flush tried Redis
    assert breaker.stats().short_circuited == 4 and exporter.source_health()["buffered"] == 5


def test_the_buffer_drops_the_oldest_records_when_redis_is_down_and_counts_them() -> None:
    client = spool_client(f"redis://127.0.0.1:{free_port()}/9")
    exporter = SpoolExporter(client, "test:down", max_buffer_records=10)
    exporter.export(sample_records(25))
    result = exporter.flush(1.0)
    assert result.dropped == 15 and result.remaining == 10
    assert exporter.source_health()["dropped"] == 15


def test_the_backlog_is_spooled_once_redis_is_back(key: str) -> None:
    proxy = RedisProxy().up()
    exporter = SpoolExporter(spool_client(proxy.url), key, breaker=CircuitBreaker(probe_base_s=0.05))
    try:
        proxy.down()
        kept = sample_records(3, tag="aaaaaaaaaaaaaaaa")
        exporter.export(kept)
        assert exporter.flush(1.0).status == "failed"
        proxy.up()
        later = sample_records(2, tag="bbbbbbbbbbbbbbbb")
        exporter.export(later)
        eventually(lambda: exporter.flush(1.0).status == "drained")
    finally:
        proxy.down()
    client = redis_or_skip()
    spooled = [r.record_id for f in entries(client, key) for r in (decode_entry(f) or [])]
    assert spooled == ids(kept + later)


def test_a_backlog_larger_than_one_entry_is_written_as_several(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    records = sample_records(ENTRY_MAX_RECORDS + 10, size=200)
    exporter.export(records)
    assert exporter.flush(1.0).delivered == len(records)
    sizes = [len(decode_entry(fields) or []) for fields in entries(client, key)]
    assert sizes == [ENTRY_MAX_RECORDS, 10]


def test_records_that_are_not_json_or_too_large_are_dropped_and_counted(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    exporter.export([{"recordId": "x", "v": object()}, sample_record(1, size=MAX_BODY_BYTES + 1), sample_record(2)])
    result = exporter.flush(1.0)
    assert result.delivered == 1 and result.dropped == 2
    health = exporter.source_health()
    assert health["invalid"] == 1 and health["oversized"] == 1


def test_exports_after_shutdown_are_dropped_and_counted(client: redis.Redis, key: str) -> None:
    exporter = SpoolExporter(client, key)
    exporter.export(sample_records(2))
    assert exporter.shutdown(1.0).delivered == 2
    exporter.export(sample_records(3))
    assert exporter.flush(1.0).dropped == 3 and client.xlen(key) == 1


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_spools_its_own_records_and_the_parent_keeps_its_buffer(
    client: redis.Redis, key: str
) -> None:
    exporter = SpoolExporter(client, key)
    parent = sample_records(4, tag="aaaaaaaaaaaaaaaa")
    child = sample_records(2, tag="bbbbbbbbbbbbbbbb")
    exporter.export(parent)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            exporter.export(child)
            result = exporter.flush(1.0)
            code = 0 if (result.status, result.delivered) == ("drained", 2) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exporter.flush(1.0).delivered == 4
    spooled = [[r.record_id for r in decode_entry(f) or []] for f in entries(client, key)]
    assert spooled == [ids(child), ids(parent)]
