"""``ctx.crux.generation``: one ``generation.call`` span per model call, with model, provider,
usage, cost and the response's facts; content only with ``CRUX_RECORD_CONTENT=true``."""

from __future__ import annotations

from datetime import datetime

import pytest

from cruxcelery import Generation, GenerationStream, generation, generation_stream
from tests.agents.helpers import artifacts, end_of, events, one, settled, starts


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def test_a_generation_records_model_provider_usage_and_response(records, agents_app):
    agents_app.generate.delay({"topic": "leases"}).get(timeout=15)
    found = settled(records)
    gen = one(starts(found, "generation.call"))
    assert (gen["name"], gen["model"], gen["provider"], gen["family"]) == ("chat local-1", "local-1", "local",
                                                                           "generation")
    assert gen["attributes"]["operation"] == "chat" and gen["attributes"]["messageCount"] == 2
    end = end_of(found, gen["spanId"])
    assert end["status"] == "ok"
    assert end["metrics"] == {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19, "costUsd": 0.0001}
    assert end["attributes"]["responseModel"] == "local-1-2026" and end["attributes"]["finishReasons"] == ["tool_calls"]
    assert end["attributes"]["responseId"] == "resp_1"
    usage = one(events(found, gen["spanId"], "usage.observed"))
    assert usage["attributes"]["totalTokens"] == 19


def test_without_record_content_only_the_shape_of_messages_and_output_is_recorded(records, agents_app):
    agents_app.generate.delay({"topic": "secret-plans"}).get(timeout=15)
    found = settled(records)
    gen = one(starts(found, "generation.call"))
    messages = one(artifacts(found, gen["spanId"], "messages"))["preview"]
    assert messages["contentRecorded"] is False and messages["count"] == 2
    assert messages["messages"][1] == {"role": "user", "content": {"type": "text", "chars": 26}}
    output = one(artifacts(found, gen["spanId"], "output"))["preview"]
    assert output == {"type": "object", "keys": 1, "contentRecorded": False}
    requested = events(found, gen["spanId"], "tool.requested")
    assert [e["attributes"]["arguments"] for e in requested] == [{"type": "object", "keys": 1}] * 2
    assert "secret-plans" not in str([r for r in found if r.get("spanId") == gen["spanId"]])


def test_with_record_content_messages_and_output_are_recorded(records, agents_app, monkeypatch):
    with_content = agents_app.crux.settings.model_copy(update={"record_content": True})
    monkeypatch.setattr(agents_app.crux, "settings", with_content)
    agents_app.generate.delay({"topic": "leases"}).get(timeout=15)
    found = settled(records)
    gen = one(starts(found, "generation.call"))
    messages = one(artifacts(found, gen["spanId"], "messages"))["preview"]
    assert messages == {"messages": [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "tell me about leases"}]}
    assert one(artifacts(found, gen["spanId"], "output"))["preview"] == {"text": "leases needs a lookup"}
    requested = events(found, gen["spanId"], "tool.requested")
    assert requested[0]["attributes"]["arguments"] == {"q": "leases"}


def test_a_timeout_records_the_generations_deadline(records, agents_app):
    agents_app.generate.delay({}).get(timeout=15)
    gen = one(starts(settled(records), "generation.call"))
    assert gen["attributes"]["timeoutMs"] == 30000
    assert abs(_ms(gen["deadlineAt"]) - _ms(gen["startedAt"]) - 30000) <= 2


def test_a_failing_generation_records_error_evidence_and_propagates(records, agents_app):
    assert agents_app.generate_fails.delay({}).get(timeout=15) == "handled"
    found = settled(records)
    gen = one(starts(found, "generation.call"))
    end = end_of(found, gen["spanId"])
    assert end["status"] == "error" and end["error"]["name"] == "ConnectionError"
    assert one(events(found, gen["spanId"], "exception"))["attributes"]["exception.message"] == "provider unreachable"
    assert {a["kind"] for a in artifacts(found, gen["spanId"])} >= {"error.stack", "error.raw"}


def test_outside_an_action_generations_are_a_recording_free_pass_through():
    with generation(model="m", provider="p", messages=[{"role": "user", "content": "hi"}]) as gen:
        gen.tool_requested("c1", "t", {})
        gen.finish(input_tokens=1, output_tokens=1, output="x")
    assert isinstance(gen, Generation) and not gen.recording and gen.span_id is None
    stream = generation_stream(model="m", provider="p")
    assert isinstance(stream, GenerationStream) and not stream.recording
    assert list(stream.wrap(iter([1, 2, 3]))) == [1, 2, 3]
    stream.step(index=0)
    stream.finish(output_tokens=3)


def test_an_exception_inside_a_pass_through_generation_still_propagates():
    with pytest.raises(ZeroDivisionError), generation(model="m", provider="p"):
        raise ZeroDivisionError
