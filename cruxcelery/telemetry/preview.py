"""JSON-safe previews: any Python value in, a bounded JSON value out. Never raises.

Per node: strings over 64,000 chars are truncated with a marker, arrays and objects over 200
items/keys are cut with a marker, depth 8, cycles become ``[Circular]``; bytes, sets, datetimes,
pydantic models, dataclasses and other objects become safe values.

Per call (one record's value): a budget of ``MAX_NODES`` values visited and ``MAX_TOTAL_CHARS``
string characters kept. When it runs out the walk stops early: the container being walked ends
with ``BUDGET_MARKER`` and nothing more is visited, so a huge value costs a bounded amount of work
(no copy of a big list or set is ever made).

Every string leaf (and key) also passes through the active ``redaction.Redactor``: secret values
and secret-shaped text never reach a record.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from itertools import islice
from typing import Any

from pydantic import BaseModel

from cruxcelery.telemetry import redaction
from cruxcelery.telemetry.redaction import Redactor

MAX_STRING = 64_000
MAX_ITEMS = 200
MAX_DEPTH = 8
MAX_BYTES_PREVIEW = 1024
MAX_NODES = 10_000
MAX_TOTAL_CHARS = 512_000
CIRCULAR = "[Circular]"
BUDGET_MARKER = "[preview budget exhausted]"


def _truncate(text: str) -> str:
    if len(text) <= MAX_STRING:
        return text
    return text[:MAX_STRING] + f"...[truncated {len(text) - MAX_STRING} chars]"


_SCALARS = (str, int, bool, type(None))


class _Walk:
    """The state of one ``json_safe`` call: cycle guard, budget, redactor."""

    __slots__ = ("chars", "nodes", "redactor", "seen")

    def __init__(self, redactor: Redactor | None) -> None:
        self.seen: set[int] = set()
        self.nodes = MAX_NODES
        self.chars = MAX_TOTAL_CHARS
        self.redactor = redactor

    def text(self, value: str) -> str:
        if self.redactor is not None:
            value = self.redactor.text(value)
        limit = min(MAX_STRING, max(0, self.chars))
        if len(value) > limit:
            value = value[:limit] + f"...[truncated {len(value) - limit} chars]"
        self.chars -= len(value)
        return value

    @property
    def exhausted(self) -> bool:
        return self.nodes <= 0 or self.chars <= 0


def json_safe(value: Any) -> Any:
    """Turn ``value`` into a JSON value within the preview bounds, redacted."""
    redactor = redaction.active()
    longest = MAX_STRING if redactor is None else min(MAX_STRING, redactor.min_length - 1)
    if type(value) is dict and len(value) <= MAX_ITEMS and all(
        type(k) is str and len(k) <= longest and type(v) in _SCALARS and (type(v) is not str or len(v) <= longest)
        for k, v in value.items()
    ):
        return dict(value)  # the common case: a flat dict of short scalars (too short to hide a secret)
    try:
        return _safe(value, 0, _Walk(redactor))
    except Exception as exc:  # a hostile __repr__ or property: describe, never raise
        return f"[unserializable {type(value).__name__}: {type(exc).__name__}]"


def _safe(value: Any, depth: int, walk: _Walk) -> Any:
    walk.nodes -= 1
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return walk.text(value)
    if depth >= MAX_DEPTH:
        return f"[MaxDepth {type(value).__name__}]"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[:MAX_BYTES_PREVIEW])
        size = len(value) if not isinstance(value, memoryview) else value.nbytes
        head = base64.b64encode(raw).decode("ascii")
        return {"$bytes": size, "base64": head, "truncated": size > MAX_BYTES_PREVIEW}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return _safe(value.value, depth, walk)
    marker = id(value)
    if marker in walk.seen:
        return CIRCULAR
    walk.seen.add(marker)
    try:
        return _container(value, depth, walk)
    except Exception as exc:  # a hostile __repr__, __str__ or property spoils only its own node
        return f"[unserializable {type(value).__name__}: {type(exc).__name__}]"
    finally:
        walk.seen.discard(marker)


def _container(value: Any, depth: int, walk: _Walk) -> Any:
    if isinstance(value, BaseModel):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        fields.update(value.__pydantic_extra__ or {})
        return _mapping(fields, depth, walk)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _mapping(fields, depth, walk)
    if isinstance(value, Mapping):
        return _mapping(value, depth, walk)
    if isinstance(value, list | tuple | set | frozenset):
        return _sequence(value, depth, walk)
    if isinstance(value, BaseException):
        return {"name": type(value).__name__, "message": walk.text(str(value))}
    return walk.text(f"[{type(value).__name__}] {value!r}")


def _sequence(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int, walk: _Walk) -> list[Any]:
    total = len(value)
    head: Any = islice(value, MAX_ITEMS)  # never a copy of a huge value
    if isinstance(value, set | frozenset):
        head = sorted(head, key=repr)  # a stable order (of the first 200 when there are more)
    out: list[Any] = []
    for item in head:
        if walk.exhausted:
            out.append(f"{BUDGET_MARKER}: {total - len(out)} more items")
            return out
        out.append(_safe(item, depth + 1, walk))
    if total > MAX_ITEMS:
        out.append(f"[... {total - MAX_ITEMS} more items]")
    return out


def _mapping(value: Mapping[Any, Any], depth: int, walk: _Walk) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_ITEMS:
            out["[truncated]"] = f"[... {len(value) - MAX_ITEMS} more keys]"
            break
        if walk.exhausted:
            out["[truncated]"] = f"{BUDGET_MARKER}: {len(value) - index} more keys"
            break
        name = key if isinstance(key, str) else str(key)
        if walk.redactor is not None and len(name) >= walk.redactor.min_length:
            name = walk.redactor.text(name)
        out[name] = _safe(item, depth + 1, walk)
    return out
