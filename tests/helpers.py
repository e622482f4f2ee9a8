"""Small queries over records, shared by the tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cruxcelery.testing import MemorySink


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items}"
    return items[0]


def span_done(sink: MemorySink, name: str, count: int = 1) -> bool:
    spans = sink.spans(name=name)
    return len(spans) >= count and all(sink.span_end(s["spanId"]) for s in spans[:count])


def wait_span(sink: MemorySink, name: str, count: int = 1, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    assert sink.wait_for(lambda s: span_done(s, name, count), timeout_s), (
        f"span {name!r} x{count} did not finish; have {[r.get('name') for r in sink.spans()]}"
    )
    return sink.spans(name=name)


def assert_segment_sequences(records: list[dict[str, Any]]) -> None:
    """Per segment, sequence numbers start at 1 and never repeat."""
    by_segment: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_segment[record["segmentId"]].append(record["segmentSeq"])
    for segment, seqs in by_segment.items():
        assert min(seqs) == 1, f"{segment} starts at {min(seqs)}"
        assert len(seqs) == len(set(seqs)), f"{segment} repeats a sequence number: {sorted(seqs)}"

