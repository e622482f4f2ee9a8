"""JSON-safe previews: any Python value in, a bounded JSON value out. Never raises."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

MAX_STRING = 64_000
MAX_ITEMS = 200
MAX_DEPTH = 8
MAX_BYTES_PREVIEW = 1024
CIRCULAR = "[Circular]"


def _truncate(text: str) -> str:
    if len(text) <= MAX_STRING:
        return text
    return text[:MAX_STRING] + f"...[truncated {len(text) - MAX_STRING} chars]"


_SCALARS = (str, int, bool, type(None))


def json_safe(value: Any) -> Any:
    """Turn ``value`` into a JSON value within the preview bounds."""
    if type(value) is dict and len(value) <= MAX_ITEMS and all(
        type(k) is str and type(v) in _SCALARS and (type(v) is not str or len(v) <= MAX_STRING)
        for k, v in value.items()
    ):
        return dict(value)  # the common case: a flat dict of short scalars
    try:
        return _safe(value, 0, set())
    except Exception as exc:  # a hostile __repr__ or property: describe, never raise
        return f"[unserializable {type(value).__name__}: {type(exc).__name__}]"


def _safe(value: Any, depth: int, seen: set[int]) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _truncate(value)
    if depth >= MAX_DEPTH:
        return f"[MaxDepth {type(value).__name__}]"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        head = base64.b64encode(raw[:MAX_BYTES_PREVIEW]).decode("ascii")
        return {"$bytes": len(raw), "base64": head, "truncated": len(raw) > MAX_BYTES_PREVIEW}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return _safe(value.value, depth, seen)
    marker = id(value)
    if marker in seen:
        return CIRCULAR
    seen.add(marker)
    try:
        return _container(value, depth, seen)
    finally:
        seen.discard(marker)


def _container(value: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(value, BaseModel):
        return _safe(value.model_dump(mode="python"), depth, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _mapping(fields, depth, seen)
    if isinstance(value, Mapping):
        return _mapping(value, depth, seen)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        out = [_safe(item, depth + 1, seen) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out.append(f"[... {len(items) - MAX_ITEMS} more items]")
        return out
    if isinstance(value, BaseException):
        return {"name": type(value).__name__, "message": _truncate(str(value))}
    return _truncate(f"[{type(value).__name__}] {value!r}")


def _mapping(value: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_ITEMS:
            out["[truncated]"] = f"[... {len(value) - MAX_ITEMS} more keys]"
            break
        out[key if isinstance(key, str) else str(key)] = _safe(item, depth + 1, seen)
    return out
