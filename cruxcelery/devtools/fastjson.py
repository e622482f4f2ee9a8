"""JSON for the hot paths (ingest bodies, run detail): ``orjson`` when installed (the ``devtools``
extra installs it), else the standard library with the same results."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["HAVE_ORJSON", "JSONDecodeError", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - the devtools extra installs orjson
    orjson = None  # type: ignore[assignment]

HAVE_ORJSON = orjson is not None
JSONDecodeError = ValueError  # orjson.JSONDecodeError and json.JSONDecodeError are both ValueErrors


def _default(value: Any) -> str:
    return str(value)


def loads(data: bytes | str) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold are written as their ``str()``."""
    if orjson is not None:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default).encode()
