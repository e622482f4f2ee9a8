"""Chunking: at most 50 records and 1 MiB of real request body per chunk; oversized set apart."""

from __future__ import annotations

import json

from cruxcelery.telemetry.http.chunking import (
    MAX_BODY_BYTES,
    build_body,
    chunk_encoded,
    chunk_records,
    encode_record,
)
from tests.receiver import sample_record, sample_records


def test_chunks_hold_at_most_50_records_in_order() -> None:
    plan = chunk_records(sample_records(120, size=200))
    assert [len(chunk) for chunk in plan.chunks] == [50, 50, 20]
    assert [record.seq for chunk in plan.chunks for record in chunk] == list(range(120))


def test_body_is_the_schema_v5_envelope_in_compact_json() -> None:
    records = sample_records(3, size=200)
    body = build_body(encode_record(record) for record in records)
    assert body == json.dumps({"schemaVersion": 5, "records": records}, separators=(",", ":")).encode()


def test_no_chunk_body_exceeds_1_mib() -> None:
    records = sample_records(40, size=100_000)
    plan = chunk_records(records)
    sizes = [len(build_body(chunk)) for chunk in plan.chunks]
    assert all(size <= MAX_BODY_BYTES for size in sizes)
    assert sum(len(chunk) for chunk in plan.chunks) == 40
    assert len(plan.chunks) == 4  # 10 records of ~100 kB fit in 1 MiB, 11 do not


def test_a_body_of_exactly_1_mib_fits() -> None:
    probe = encode_record(sample_record(0, size=1000))
    overhead = len(build_body([probe])) - probe.size
    record = sample_record(0, size=MAX_BODY_BYTES - overhead)
    plan = chunk_records([record])
    assert len(plan.chunks) == 1 and not plan.oversized
    assert len(build_body(plan.chunks[0])) == MAX_BODY_BYTES
    too_big = sample_record(0, size=MAX_BODY_BYTES - overhead + 1)
    assert len(chunk_records([too_big]).oversized) == 1


def test_single_oversized_record_is_set_apart_and_the_others_kept() -> None:
    records = sample_records(5, size=300)
    records[2] = sample_record(2, size=MAX_BODY_BYTES + 10)
    plan = chunk_records(records)
    assert [record.record_id for record in plan.oversized] == [records[2]["recordId"]]
    assert [record.seq for chunk in plan.chunks for record in chunk] == [0, 1, 3, 4]


def test_unserializable_records_are_set_apart() -> None:
    records: list[dict[str, object]] = [sample_record(0), {"recordId": "x", "bad": object()}]
    plan = chunk_records(records)
    assert len(plan.invalid) == 1
    assert sum(len(chunk) for chunk in plan.chunks) == 1


def test_nan_and_infinity_are_sent_as_null() -> None:
    encoded = encode_record({"recordId": "nan", "value": float("nan"), "other": float("inf")})
    assert json.loads(encoded.data) == {"recordId": "nan", "value": None, "other": None}


def test_what_orjson_refuses_is_encoded_like_the_stdlib_does() -> None:
    record = {"recordId": "r", 1: "integer key", "big": 2**70, "lone": "\ud800"}
    assert json.loads(encode_record(record).data) == {"recordId": "r", "1": "integer key", "big": 2**70,
                                                       "lone": "\ud800"}


def test_utf8_size_is_counted_not_characters() -> None:
    record = {"recordId": "rec_0123456789abcdef_1", "text": "é" * 10}
    encoded = encode_record(record)
    assert encoded.size == len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    assert "é".encode() in encoded.data


def test_lone_surrogates_are_escaped_not_lost() -> None:
    encoded = encode_record({"recordId": "r", "text": "bad \ud800 text"})
    assert json.loads(encoded.data)["text"] == "bad \ud800 text"


def test_byte_limit_applies_with_custom_bounds() -> None:
    encoded = [encode_record(record) for record in sample_records(10, size=600)]
    plan = chunk_encoded(encoded, max_records=50, max_body_bytes=2000)
    assert all(len(build_body(chunk)) <= 2000 for chunk in plan.chunks)
    assert [len(chunk) for chunk in plan.chunks] == [3] * 3 + [1]
