"""What ingest checks in one record: its base identity, as Crux's Go ingest does.

A record is accepted when it is a JSON object with ``schemaVersion`` 5, a ``recordId``, ``runId``,
``segmentId`` and ``type`` (non-empty strings) and a ``segmentSeq`` >= 1; ``operationId`` and
``traceId``, when present, are strings. Records of a known type must also carry what the run view
needs (``spanId`` for span records, string timestamps, object attributes). A timestamp of any
record must fall within years 1 to 9999 in UTC (what can be written back). Anything else in a
record is kept as it came. Unknown types pass on their identity alone (forward compatibility): they
are stored raw and counted, never projected. The stricter producer models of
``cruxcelery.telemetry.records`` are not applied here: ingest accepts what other Crux producers
send (Crux's own fixtures use ids such as ``run_success``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cruxcelery.devtools.timeutil import out_of_range
from cruxcelery.telemetry.records import SCHEMA_VERSION

__all__ = ["KNOWN_TYPES", "Identity", "check_record"]

KNOWN_TYPES = frozenset({
    "run:start", "run:suspend", "run:resume", "run:end",
    "span:start", "span:end", "span", "span:event", "artifact", "edge",
})
_SPAN_TYPES = frozenset({"span:start", "span:end", "span", "span:event", "artifact"})
_TIME_FIELDS = ("startedAt", "endedAt", "suspendedAt", "resumedAt", "timestamp", "createdAt")
_STRING_FIELDS = ("name", "primitive", "family", "parentSpanId", "kind", "reason", "previousSegmentId",
                  "parentRunId", "triggeredBySpanId", "rootPrimitive", "flowId", "status")
_MAX_ID = 256
_MAX_SEQ = 2**63 - 1  # what SQLite's INTEGER holds


@dataclass(frozen=True, slots=True)
class Identity:
    record_id: str
    run_id: str
    segment_id: str
    segment_seq: int
    type: str
    known: bool


def _id(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise ValueError(f"{key} must be a non-empty string of at most {_MAX_ID} characters")
    return value


def check_record(record: Any) -> Identity:
    """The record's identity; raises ``ValueError`` naming the first problem."""
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    version = record.get("schemaVersion")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ValueError(f"schemaVersion must be {SCHEMA_VERSION}")
    seq = record.get("segmentSeq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= _MAX_SEQ:
        raise ValueError(f"segmentSeq must be an integer from 1 to {_MAX_SEQ}")
    identity = Identity(
        _id(record, "recordId"), _id(record, "runId"), _id(record, "segmentId"), seq,
        _id(record, "type"), False,
    )
    for key in ("operationId", "traceId"):
        if key in record and not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string")
    for key in _TIME_FIELDS:
        if out_of_range(record.get(key)):
            raise ValueError(f"{key} must fall within years 1 to 9999 in UTC")
    if identity.type not in KNOWN_TYPES:
        return identity
    _check_known(record, identity.type)
    return Identity(identity.record_id, identity.run_id, identity.segment_id, seq, identity.type, True)


def _check_known(record: dict[str, Any], type_: str) -> None:
    if type_ in _SPAN_TYPES:
        _id(record, "spanId")
    for key in _TIME_FIELDS:
        if key in record and not isinstance(record[key], str):
            raise ValueError(f"{key} must be an ISO 8601 string")
    for key in _STRING_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string")
    if "attributes" in record and record["attributes"] is not None and not isinstance(record["attributes"], dict):
        raise ValueError("attributes must be an object")
    if "error" in record and record["error"] is not None and not isinstance(record["error"], dict):
        raise ValueError("error must be an object")
