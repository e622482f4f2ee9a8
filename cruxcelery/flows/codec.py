"""JSON and Redis-reply helpers. Replies are narrowed at runtime, so either ``decode_responses``
setting of the client works; JSON is the only encoding (never pickle)."""

from __future__ import annotations

import json
from typing import Any

from cruxcelery.flows.errors import FlowError


def dumps(value: Any) -> str:
    """Compact JSON. Raises ``TypeError``/``ValueError`` for values JSON cannot carry (NaN too)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def text(value: object) -> str:
    """A Redis reply as ``str`` (UTF-8 decoded when the client returns bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise FlowError(f"unexpected Redis reply {value!r}")


def opt_text(value: object) -> str | None:
    return None if value is None else text(value)


def as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(text(value))


def scored(rows: object) -> list[tuple[str, float]]:
    """Narrow a ``WITHSCORES`` reply to ``[(member, score)]``."""
    if not isinstance(rows, list):
        raise FlowError(f"unexpected Redis reply {rows!r}")
    out: list[tuple[str, float]] = []
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise FlowError(f"unexpected Redis reply {row!r}")
        member, score = row
        out.append((text(member), float(score)))
    return out


def reply_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise FlowError(f"unexpected Redis reply {value!r}")
    return value


MAX_DEPTH = 100
"""How deeply a persisted value may nest. The snapshot holding it is read back with pydantic,
whose JSON parser stops at 200 levels (and its serializer a little further): a deeper value would
be stored and then make the flow unreadable."""


def lossless(what: str, value: Any) -> Any:
    """``value`` as the JSON it will be stored as (a model as its JSON dump), checked to survive
    the round trip exactly: no previews, no truncation. ``FlowError`` when it is not JSON (NaN,
    lone surrogates, objects JSON cannot carry) or nests deeper than ``MAX_DEPTH``."""
    from pydantic import BaseModel

    try:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        raw = dumps(value)
        loaded = json.loads(raw.encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise FlowError(f"{what} is not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _depth(loaded) > MAX_DEPTH:  # counting is cheap
        raise FlowError(f"{what} is nested deeper than {MAX_DEPTH} levels: the flow store cannot keep it")
    return loaded


def _depth(value: Any) -> int:
    """How many containers deep a JSON value nests (a scalar: 0, ``[1]``: 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
