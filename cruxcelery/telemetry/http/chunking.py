"""Split records into request-sized chunks: at most 50 records and 1 MiB of request body each.

Each record is serialized once (compact JSON, UTF-8) into an ``EncodedRecord``; a request body is
``{"schemaVersion":5,"records":[r1,r2,...]}`` built from those bytes, so the size counted here is the
exact size sent. A record that alone would make the body exceed the limit is never sent: it comes
back in ``ChunkPlan.oversized``. A record that cannot be serialized comes back in
``ChunkPlan.invalid``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_RECORDS_PER_REQUEST",
    "SCHEMA_VERSION",
    "ChunkPlan",
    "EncodedRecord",
    "body_size",
    "build_body",
    "chunk_encoded",
    "chunk_records",
    "encode_record",
    "encode_records",
    "single_record_fits",
]

SCHEMA_VERSION = 5
MAX_RECORDS_PER_REQUEST = 50
MAX_BODY_BYTES = 1024 * 1024

_BODY_HEAD = b'{"schemaVersion":%d,"records":[' % SCHEMA_VERSION
_BODY_TAIL = b"]}"
_BODY_OVERHEAD = len(_BODY_HEAD) + len(_BODY_TAIL)
# The stdlib encoders (built once: json.dumps with options builds one per call) serve what orjson
# refuses: non-string keys, integers past 64 bits, lone surrogates.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_ENCODE_ASCII = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


@dataclass(slots=True)
class EncodedRecord:
    """One record serialized to compact UTF-8 JSON. ``seq`` is free for the caller's bookkeeping
    (the delivery queue numbers records with it); the other fields are never changed."""

    record_id: str
    data: bytes
    seq: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class ChunkPlan:
    """The result of chunking: chunks to send, and the records that will never be sent."""

    chunks: list[list[EncodedRecord]] = field(default_factory=list)
    oversized: list[EncodedRecord] = field(default_factory=list)
    invalid: list[Mapping[str, Any]] = field(default_factory=list)


def encode_record(record: Mapping[str, Any], *, seq: int = 0) -> EncodedRecord:
    """Serialize one record (orjson: a tenth of the stdlib's cost; NaN and infinities become
    ``null``, as JSON has neither). Raises ``TypeError``/``ValueError`` if it is not
    JSON-serializable (non-JSON types, a non-dict mapping inside it)."""
    obj = record if isinstance(record, dict) else dict(record)
    try:
        data = orjson.dumps(obj)
    except TypeError:
        try:
            data = _ENCODE(obj).encode()
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8 encoded: keep them as JSON \\u escapes instead.
            data = _ENCODE_ASCII(obj).encode()
    record_id = obj.get("recordId")
    return EncodedRecord(record_id if isinstance(record_id, str) else "", data, seq)


def encode_records(
    records: Iterable[Mapping[str, Any]], max_body_bytes: int = MAX_BODY_BYTES
) -> tuple[list[EncodedRecord], int, int]:
    """Encode records once: those that fit a request alone, and how many were not JSON or too large."""
    encoded: list[EncodedRecord] = []
    invalid = oversized = 0
    room = max_body_bytes - _BODY_OVERHEAD
    for record in records:
        try:
            item = encode_record(record)
        except (TypeError, ValueError, RecursionError, AttributeError):
            invalid += 1
            continue
        if len(item.data) <= room:
            encoded.append(item)
        else:
            oversized += 1  # no request could ever carry it
    return encoded, invalid, oversized


def body_size(sizes_total: int, count: int) -> int:
    """The body size of ``count`` records whose encodings total ``sizes_total`` bytes."""
    return _BODY_OVERHEAD + sizes_total + max(0, count - 1)


def single_record_fits(record: EncodedRecord, max_body_bytes: int = MAX_BODY_BYTES) -> bool:
    """True when a request carrying only this record stays within ``max_body_bytes``."""
    return body_size(record.size, 1) <= max_body_bytes


def build_body(records: Iterable[EncodedRecord]) -> bytes:
    """The exact request body ``{"schemaVersion":5,"records":[...]}`` for these records."""
    return _BODY_HEAD + b",".join(r.data for r in records) + _BODY_TAIL


def chunk_encoded(
    records: Iterable[EncodedRecord],
    *,
    max_records: int = MAX_RECORDS_PER_REQUEST,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ChunkPlan:
    """Group encoded records, in order, into chunks within both limits; oversized ones set apart."""
    plan = ChunkPlan()
    room = max_body_bytes - _BODY_OVERHEAD  # for the records and the commas between them
    current: list[EncodedRecord] = []
    current_bytes = 0
    for record in records:  # hot path: sizes inlined (see body_size)
        size = len(record.data)
        if size > room:
            plan.oversized.append(record)
            continue
        count = len(current)
        if count and (count >= max_records or current_bytes + size + count > room):
            plan.chunks.append(current)
            current = []
            current_bytes = 0
        current.append(record)
        current_bytes += size
    if current:
        plan.chunks.append(current)
    return plan


def chunk_records(
    records: Sequence[Mapping[str, Any]],
    *,
    max_records: int = MAX_RECORDS_PER_REQUEST,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ChunkPlan:
    """Encode then chunk plain records; unserializable ones go to ``ChunkPlan.invalid``."""
    encoded: list[EncodedRecord] = []
    invalid: list[Mapping[str, Any]] = []
    for index, record in enumerate(records):
        try:
            encoded.append(encode_record(record, seq=index))
        except (TypeError, ValueError, RecursionError):
            invalid.append(record)
    plan = chunk_encoded(encoded, max_records=max_records, max_body_bytes=max_body_bytes)
    plan.invalid = invalid
    return plan
