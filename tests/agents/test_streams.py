"""``ctx.crux.generation_stream``: a ``generation.stream`` span closed from the real end of the
stream: exhausted, raising, or closed or dropped by its consumer."""

from __future__ import annotations

from tests.agents.helpers import end_of, events, one, settled, starts


def _stream(records, agents_app, mode):
    result = agents_app.stream.delay({"mode": mode}).get(timeout=15)
    found = settled(records)
    span = one(starts(found, "generation.stream"))
    return result, found, span, end_of(found, span["spanId"])


def test_an_exhausted_stream_ends_ok_with_its_steps_chunks_and_usage(records, agents_app):
    result, found, span, end = _stream(records, agents_app, "plain")
    assert result == "chunk0 chunk1 chunk2 "
    assert (span["model"], span["provider"], span["family"]) == ("local-1", "local", "generation")
    assert end["status"] == "ok" and end["attributes"]["streamEnd"] == "exhausted"
    assert end["attributes"]["chunkCount"] == 3 and end["attributes"]["stepCount"] == 3
    assert end["metrics"] == {"inputTokens": 3, "outputTokens": 3, "totalTokens": 6}
    steps = events(found, span["spanId"], "generation.step")
    assert [s["attributes"]["index"] for s in steps] == [0, 1, 2]
    # the stream's end is its real end: after the last chunk, before the action ends
    action_end = end_of(found, span["parentSpanId"])
    assert end["segmentSeq"] < action_end["segmentSeq"]


def test_a_stream_the_consumer_breaks_out_of_ends_cancelled(records, agents_app):
    result, _, _, end = _stream(records, agents_app, "break")
    assert result == "chunk0 chunk1 "
    assert end["status"] == "cancelled" and end["attributes"]["streamEnd"] == "abandoned"
    assert end["attributes"]["chunkCount"] == 2


def test_a_stream_the_consumer_closes_ends_closed(records, agents_app):
    _, _, _, end = _stream(records, agents_app, "close")
    assert end["status"] == "cancelled" and end["attributes"]["streamEnd"] == "closed"


def test_a_stream_that_raises_ends_error_with_evidence(records, agents_app):
    result, found, span, end = _stream(records, agents_app, "error")
    assert result == "stalled"
    assert end["status"] == "error" and end["error"]["name"] == "TimeoutError"
    assert end["attributes"]["streamEnd"] == "error" and end["attributes"]["chunkCount"] == 2
    assert one(events(found, span["spanId"], "exception"))["attributes"]["exception.message"] == "stream stalled"


def test_an_async_stream_ends_at_its_real_end(records, agents_app):
    result, _, _, end = _stream(records, agents_app, "async")
    assert result == "async0 async1 async2 "
    assert end["status"] == "ok" and end["attributes"]["chunkCount"] == 3


def test_a_streams_deadline_is_recorded(records, agents_app):
    _, _, span, _ = _stream(records, agents_app, "plain")
    assert span["attributes"]["timeoutMs"] == 5000 and span["deadlineAt"] > span["startedAt"]
