"""A deterministic stand-in for a chat model, so the reference agent (and ``cruxcelery demo``)
runs with no network and no API key: the same messages always get the same answer.

``complete(messages, tools)`` answers like a chat completion (text, tool calls, finish reason,
token usage); ``stream(messages)`` yields the answer word by word, the last chunk carrying the
usage, as streamed chat APIs do. Token counts are word counts; the price is made up."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

MODEL = "local-planner-1"
PROVIDER = "local"
USD_PER_1K_TOKENS = 0.0005


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    id: str
    model: str
    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    tool_calls: tuple[ToolCall, ...] = field(default=())

    @property
    def cost_usd(self) -> float:
        return round((self.input_tokens + self.output_tokens) * USD_PER_1K_TOKENS / 1000, 8)


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    usage: tuple[int, int] | None = None  # (input, output) tokens, on the last chunk


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, default=str).split()))


def _digest(messages: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(messages), sort_keys=True, default=str).encode()).hexdigest()


def _question(messages: Sequence[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


def _keywords(text: str) -> list[str]:
    words = [w.strip("?.,!").lower() for w in text.split()]
    return [w for w in words if len(w) > 4][:3] or ["overview"]


def complete(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()) -> Completion:
    """Plan with the tools offered: search the notes, fetch the first source, ask the user to
    confirm the scope (a client-side tool the agent does not execute)."""
    digest = _digest(messages)
    offered = {t["function"]["name"] for t in tools if "function" in t}
    keywords = _keywords(_question(messages))
    calls: list[ToolCall] = []
    if "search_notes" in offered:
        calls.append(ToolCall(f"call_{digest[:8]}_0", "search_notes", {"query": " ".join(keywords), "limit": 3}))
    if "fetch_source" in offered:
        calls.append(ToolCall(f"call_{digest[:8]}_1", "fetch_source", {"source": f"{keywords[0]} docs"}))
    if "ask_user" in offered:
        calls.append(ToolCall(f"call_{digest[:8]}_2", "ask_user", {"question": f"Only {keywords[0]}?"}))
    if calls:
        text = (f"Plan: search the notes for {', '.join(keywords)}; fetch the {keywords[0]} docs; "
                "outline and pick citations in parallel; hand the draft to the writer.")
    else:
        text = "Citations: " + "; ".join(sorted({str(m.get("content", ""))[:40] for m in messages[1:]}))
    return Completion(id=f"cmpl_{digest[:12]}", model=MODEL, text=text,
                      finish_reason="tool_calls" if calls else "stop", input_tokens=_tokens(messages),
                      output_tokens=_tokens(text), tool_calls=tuple(calls))


def stream(messages: Sequence[dict[str, Any]]) -> Iterator[Chunk]:
    """An outline for the question, word by word; the last chunk carries the usage."""
    keywords = _keywords(_question(messages))
    words = ["Outline:", "why", *keywords, "matter;", "how", "it", "works;", "what", "to", "watch."]
    for index, word in enumerate(words):
        last = index == len(words) - 1
        yield Chunk(index, word + ("" if last else " "),
                    (_tokens(messages), len(words)) if last else None)
