"""Running one call of the test app and reading what it recorded."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from cruxcelery.testing import MemorySink
from tests.agents.helpers import end_of, one, settled

GENERATIONS = ("generation.call", "generation.stream")


def call(task: Any, sink: MemorySink, server: Any, **fields: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``task`` with a ``Call`` for ``server``; its result (or exception) and its run's records."""
    result = task.delay({"base_url": server.url, **fields})
    value = result.get(timeout=30, propagate=False)
    return value, settled(sink, timeout_s=30)


def ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def generation(records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's one generation span: its ``span:start`` and ``span:end``."""
    start = one([r for r in records if r["type"] == "span:start" and r["primitive"] in GENERATIONS])
    return start, end_of(records, start["spanId"])


def requested_tools(records: list[dict[str, Any]], span_id: str) -> list[dict[str, Any]]:
    """The ``tool.call`` spans under the generation ``span_id`` for calls nothing executed."""
    return [r for r in records if r["type"] == "span" and r["primitive"] == "tool.call"
            and r["parentSpanId"] == span_id]


def assert_no_content(records: list[dict[str, Any]], *texts: str) -> None:
    dumped = json.dumps(records)
    for text in texts:
        assert text not in dumped, f"{text!r} was recorded without CRUX_RECORD_CONTENT"


def assert_timed_out(failure: Any, start: dict[str, Any], end: dict[str, Any], stall_s: float) -> None:
    """The client gave up on its own timeout: the task failed with an error that says it timed out
    (the result backend may rebuild it as any base class, so its class says nothing), and the
    generation span ended with that error at its deadline or later, but before the stalled server
    (``stall_s``) would have sent anything more."""
    assert isinstance(failure, Exception) and "timed out" in str(failure).lower(), repr(failure)
    assert end["status"] == "error" and "timed out" in end["error"]["message"].lower(), end["error"]
    assert ms(start["deadlineAt"]) <= ms(end["endedAt"]) < ms(start["startedAt"]) + stall_s * 1000


def wait_start(sink: MemorySink, timeout_s: float = 10.0) -> dict[str, Any]:
    """The first generation ``span:start`` as soon as it arrives (the call may still be running)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [r for r in sink.records if r["type"] == "span:start" and r["primitive"] in GENERATIONS]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError("no generation started")
