"""Split an ingest body into its records, keeping each record's exact JSON text.

The body is ``{"schemaVersion": 5, "records": [...]}``. Raw records are stored unchanged, so each
record's text is cut out of the body as it arrived (``json.JSONDecoder.raw_decode`` walks the array
element by element) instead of being re-serialized after parsing. A compact body that ``orjson``
writes back byte for byte takes a faster path with the same result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cruxcelery.devtools.fastjson as fastjson
from cruxcelery.devtools.fastjson import HAVE_ORJSON
from cruxcelery.telemetry.records import SCHEMA_VERSION

__all__ = ["MAX_RECORDS", "BatchError", "RawRecord", "split_batch"]

MAX_RECORDS = 1000
"""Records per request (Crux's senders send at most 50): a body of more is refused 413."""

def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's decoder takes NaN and Infinity; JSON (and orjson) do not


_decoder = json.JSONDecoder(parse_constant=_not_json)
_WS = " \t\n\r"


class _TooMany(Exception):
    """The records array holds more than ``MAX_RECORDS``."""


class BatchError(Exception):
    """The body as a whole is unusable: ``status`` is 400 (not JSON / not a batch), 413 (more than
    ``MAX_RECORDS`` records) or 422 (wrong batch schema version)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class RawRecord:
    """One element of ``records``: its exact text and its parsed value (any JSON value).
    ``readable``: ``fastjson`` is known to read ``text`` back (the fast path); else ingest checks."""

    text: str
    value: Any
    readable: bool = False


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _expect(text: str, pos: int, char: str) -> int:
    pos = _skip(text, pos)
    if pos >= len(text) or text[pos] != char:
        raise ValueError(f"expected {char!r} at {pos}")
    return pos + 1


def _split_array(text: str, pos: int) -> tuple[list[RawRecord], int]:
    pos = _expect(text, pos, "[")
    out: list[RawRecord] = []
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == "]":
        return out, pos + 1
    while True:
        if len(out) == MAX_RECORDS:
            raise _TooMany
        start = _skip(text, pos)
        value, end = _decoder.raw_decode(text, start)
        out.append(RawRecord(text[start:end], value))
        pos = _skip(text, end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return out, _expect(text, pos, "]")


def _parse(text: str) -> tuple[dict[str, Any], list[RawRecord] | None]:
    fields: dict[str, Any] = {}
    records: list[RawRecord] | None = None
    pos = _expect(text, 0, "{")
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == "}":
        pos += 1
    else:
        while True:
            key, pos = _decoder.raw_decode(text, _skip(text, pos))
            if not isinstance(key, str):
                raise ValueError("object key is not a string")
            pos = _expect(text, pos, ":")
            if key == "records" and text[_skip(text, pos):_skip(text, pos) + 1] == "[":
                records, pos = _split_array(text, pos)
                fields[key] = None
            else:
                fields[key], pos = _decoder.raw_decode(text, _skip(text, pos))
                if key == "records":
                    records = None
            pos = _skip(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            pos = _expect(text, pos, "}")
            break
    if _skip(text, pos) != len(text):
        raise ValueError("trailing data after the batch")
    return fields, records


def _compact(body: bytes) -> tuple[dict[str, Any], list[RawRecord] | None] | None:
    """The fast path, for bodies written as compact JSON (what Crux exporters send): when the
    body is byte for byte what ``orjson`` writes for its parsed value, each record's text is what
    it writes for that record. ``None``: any other body (the walk above handles it)."""
    if not HAVE_ORJSON:
        return None
    try:
        value = fastjson.loads(body)
    except ValueError:
        return None
    try:
        if not isinstance(value, dict) or fastjson.dumps(value) != body:
            return None
    except (TypeError, ValueError):  # orjson writes less deeply nested values than it reads
        return None
    records = value.get("records")
    if not isinstance(records, list):
        return value, None
    if len(records) > MAX_RECORDS:
        raise _TooMany
    return value, [RawRecord(fastjson.dumps(record).decode("utf-8"), record, True) for record in records]


def split_batch(body: bytes) -> list[RawRecord]:
    """The records of an ingest body. Raises ``BatchError`` (400, 413 or 422)."""
    try:
        fast = _compact(body)
        if fast is not None:
            fields, records = fast
        else:
            try:
                text = body.decode("utf-8")
                fields, records = _parse(text)
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise BatchError(400, f"malformed JSON: {exc}") from None
    except _TooMany:
        raise BatchError(413, f"more than {MAX_RECORDS} records in one request: send at most {MAX_RECORDS}"
                              " per request") from None
    version = fields.get("schemaVersion")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise BatchError(422, f"unsupported batch schemaVersion {version!r}: this server reads {SCHEMA_VERSION}")
    if records is None:
        raise BatchError(400, "the batch has no 'records' array")
    return records
