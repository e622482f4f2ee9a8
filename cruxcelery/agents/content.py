"""What a generation's records say about its input and output.

With ``CRUX_RECORD_CONTENT=true`` the ``messages`` and ``output`` artifacts hold the content
(JSON-safe previews, redacted like every record). Without it, the default, they hold only its
shape: each message's role and the type and length of its parts, counts of tool calls, an
output's type and size. OpenTelemetry's GenAI conventions make content capture opt-in for the
same reason: prompts and completions carry user data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

_MAX_MESSAGES = 200


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    fields = getattr(value, "__dict__", None)
    return fields if isinstance(fields, dict) else None


def shape(value: Any) -> dict[str, Any]:
    """The type and size of a value, never its content."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, str):
        return {"type": "text", "chars": len(value)}
    if isinstance(value, bool | int | float):
        return {"type": type(value).__name__}
    if isinstance(value, list | tuple):
        return {"type": "array", "items": len(value)}
    mapping = _as_mapping(value)
    if mapping is not None:
        return {"type": "object", "keys": len(mapping)}
    return {"type": type(value).__name__}


def _part_shape(part: Any) -> dict[str, Any]:
    mapping = _as_mapping(part)
    if mapping is None:
        return shape(part)
    kind = mapping.get("type")
    text = mapping.get("text")
    out: dict[str, Any] = {"type": kind if isinstance(kind, str) else "object"}
    if isinstance(text, str):
        out["chars"] = len(text)
    return out


def message_shape(message: Any) -> dict[str, Any]:
    """A message's role, the shape of its content, and how many tool calls it carries."""
    mapping = _as_mapping(message)
    if mapping is None:
        return {"role": None, "content": shape(message)}
    content = mapping.get("content")
    out: dict[str, Any] = {"role": mapping.get("role") if isinstance(mapping.get("role"), str) else None}
    if isinstance(content, list | tuple):
        out["content"] = [_part_shape(part) for part in content[:_MAX_MESSAGES]]
    else:
        out["content"] = shape(content)
    tool_calls = mapping.get("tool_calls")
    if isinstance(tool_calls, list | tuple):
        out["toolCalls"] = len(tool_calls)
    if isinstance(mapping.get("tool_call_id"), str):
        out["toolCallId"] = mapping["tool_call_id"]
    return out


def messages_preview(messages: Any, with_content: bool) -> dict[str, Any]:
    """The ``messages`` artifact: ``{"messages": [...]}`` as Crux's generation fixture has it;
    without content, the shapes and ``contentRecorded: false``."""
    items = list(messages) if isinstance(messages, list | tuple) else [messages]
    if with_content:
        return {"messages": items}
    return {"messages": [message_shape(m) for m in items[:_MAX_MESSAGES]], "count": len(items),
            "contentRecorded": False}


def roles(messages: Any) -> list[str]:
    items = messages if isinstance(messages, list | tuple) else [messages]
    found: list[str] = []
    for message in items[:_MAX_MESSAGES]:
        mapping = _as_mapping(message)
        role = mapping.get("role") if mapping is not None else None
        if isinstance(role, str) and role not in found:
            found.append(role)
    return found


def output_preview(output: Any, with_content: bool) -> Any:
    """The ``output`` artifact: the output itself, or its shape."""
    if with_content:
        return output
    return {**shape(output), "contentRecorded": False}


def count(messages: Any) -> int:
    return len(messages) if isinstance(messages, list | tuple) else 1
