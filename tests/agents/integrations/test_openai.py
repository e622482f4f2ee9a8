"""``instrument_openai``: the real ``openai`` client, sync and async, plain and streamed (raw
``stream=True`` and the ``chat.completions.stream`` helper), against a local server speaking the
chat completions wire format. Each call is one generation span with usage, response model,
finish reasons, its deadline and the tool calls the model asked for; no content by default."""

from __future__ import annotations

import time

import pytest

from cruxcelery.agents.streams import StreamWrapper
from cruxcelery.devtools.graph import build_graph
from cruxcelery.devtools.reconcile import reconcile
from tests.agents.helpers import artifacts, events, one
from tests.agents.integrations.checks import (
    assert_no_content,
    assert_timed_out,
    call,
    generation,
    ms,
    requested_tools,
    wait_start,
)
from tests.agents.llm_server import ANSWER, OPENAI_USAGE, TOOL_ARGS

PROMPT = "What is the weather in Paris? The secret plan is Zanzibar."
STREAMED = {"stream", "astream", "helper", "ahelper"}


def test_a_plain_call_is_one_generation_with_usage_response_model_finish_reason_and_deadline(
        llm_app, llm_records, llm_server):
    summary, records = call(llm_app.ask_openai, llm_records, llm_server, prompt=PROMPT, timeout=7.5)
    assert summary["text"] == ANSWER and summary["model"] == "gpt-local-2026-01-01"
    start, end = generation(records)
    assert (start["name"], start["primitive"], start["model"], start["provider"]) == (
        "chat gpt-local", "generation.call", "gpt-local", "openai")
    action = one([r for r in records if r["type"] == "span:start" and r["name"] == "ask openai"])
    assert start["parentSpanId"] == action["spanId"] and start["runId"] == summary["runId"]
    assert start["attributes"]["temperature"] == 0.2 and start["attributes"]["toolsOffered"] == 1
    assert start["attributes"]["timeoutMs"] == 7500  # the client's timeout, no retries
    assert abs(ms(start["deadlineAt"]) - ms(start["startedAt"]) - 7500) <= 50
    assert end["status"] == "ok"
    assert end["metrics"] == {"inputTokens": OPENAI_USAGE["prompt_tokens"],
                              "outputTokens": OPENAI_USAGE["completion_tokens"], "totalTokens": 28}
    assert end["attributes"]["responseModel"] == "gpt-local-2026-01-01"
    assert end["attributes"]["finishReasons"] == ["stop"] and end["attributes"]["responseId"].startswith("chatcmpl-")
    assert requested_tools(records, start["spanId"]) == []
    assert len(llm_server.received("/v1/chat/completions")) == 1
    assert_no_content(records, "Zanzibar", ANSWER, "terse weather")
    messages = one(artifacts(records, start["spanId"], "messages"))["preview"]
    assert messages["contentRecorded"] is False and [m["role"] for m in messages["messages"]] == ["system", "user"]


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream", "helper", "ahelper"])
def test_the_tool_calls_the_model_asks_for_are_recorded_under_its_generation(llm_app, llm_records, llm_server, mode):
    summary, records = call(llm_app.ask_openai, llm_records, llm_server, mode=mode, prompt="Weather? [tool]")
    start, end = generation(records)
    assert start["primitive"] == ("generation.stream" if mode in STREAMED else "generation.call")
    assert end["status"] == "ok"
    assert end["metrics"]["inputTokens"] == 21 and end["metrics"]["outputTokens"] == 7  # include_usage
    assert end["attributes"]["finishReasons"] == ["tool_calls"]
    assert end["attributes"]["responseModel"] == "gpt-local-2026-01-01"
    if mode in STREAMED:
        assert end["attributes"]["streamEnd"] == "exhausted" and end["attributes"]["chunkCount"] == 6
    tool = one(requested_tools(records, start["spanId"]))
    if "calls" in summary:  # what the user's code got is what the server sent
        assert [tuple(c) for c in summary["calls"]] == [(tool["attributes"]["toolCallId"], "get_weather", TOOL_ARGS)]
    assert tool["toolName"] == "get_weather" and tool["name"] == "get_weather"
    assert tool["attributes"]["executed"] is False and tool["attributes"]["toolCallId"].startswith("call_")
    requested = one(events(records, start["spanId"], "tool.requested"))["attributes"]
    assert requested["arguments"] == {"type": "object", "keys": 1}  # the shape, not "Paris"
    assert_no_content(records, "Paris", "terse weather")


def test_a_tool_the_code_runs_with_the_models_call_id_is_recorded_as_executed(llm_app, llm_records, llm_server):
    summary, records = call(llm_app.ask_openai, llm_records, llm_server, prompt="Weather? [tool]", run_tool=True)
    assert summary["ran"] == ["sunny in Paris"]
    start, _end = generation(records)
    assert requested_tools(records, start["spanId"]) == []  # nothing left unexecuted
    ran = one([r for r in records if r["type"] == "span:start" and r["primitive"] == "tool.call"])
    assert ran["attributes"]["toolCallId"] == summary["calls"][0][0] and ran["toolName"] == "get_weather"


@pytest.mark.parametrize(("status", "error", "retries"), [(400, "BadRequestError", 1),
                                                           (500, "InternalServerError", 1)])
def test_an_error_response_is_one_failed_generation_with_its_evidence(llm_app, llm_records, llm_server, status,
                                                                      error, retries):
    failure, records = call(llm_app.ask_openai, llm_records, llm_server, prompt=f"hi [error:{status}]",
                            max_retries=retries)
    assert f"Error code: {status}" in str(failure)  # the action failed with the client's exception
    start, end = generation(records)
    assert end["status"] == "error" and end["error"]["name"] == error
    exception = one(events(records, start["spanId"], "exception"))["attributes"]
    assert exception["exception.type"].endswith(error) and f"Error code: {status}" in exception["exception.message"]
    raw = one(artifacts(records, start["spanId"], "error.raw"))["preview"]
    assert raw["status_code"] == status
    assert {a["kind"] for a in artifacts(records, start["spanId"])} >= {"error.stack", "error.raw", "messages"}
    # a 5xx is retried by the client inside the one call: still one generation span
    assert len(llm_server.received("/v1/chat/completions")) == (2 if status >= 500 else 1)
    run_end = one([r for r in records if r["type"] == "run:end"])
    assert run_end["status"] == "error"


def test_a_stream_that_stalls_past_its_deadline_shows_incomplete_until_the_client_gives_up(
        llm_app, llm_records, llm_server):
    result = llm_app.ask_openai.delay({"base_url": llm_server.url, "mode": "stream", "prompt": "go [stall]",
                                       "timeout": 1.5})
    start = wait_start(llm_records)
    assert start["primitive"] == "generation.stream" and start["attributes"]["timeoutMs"] == 1500
    deadline = ms(start["deadlineAt"])
    assert abs(deadline - ms(start["startedAt"]) - 1500) <= 50
    # while stalled the span has no end: past its deadline devtools shows it incomplete
    stalled = [r for r in llm_records.records if r["runId"] == start["runId"]]
    assert not [r for r in stalled if r["type"] == "span:end" and r["spanId"] == start["spanId"]]
    graph = build_graph(start["runId"], stalled)
    reconcile(graph, now_ms=deadline + 1)
    node = graph.spans[start["spanId"]]
    assert (node.status, node.ended_ms, node.reconciled_from) == ("incomplete", deadline, "operation.deadline")
    # then the client's read timeout fires: the span ends with that error
    failure = result.get(timeout=30, propagate=False)
    from tests.agents.helpers import settled

    records = settled(llm_records, timeout_s=30)
    _start, end = generation(records)
    assert_timed_out(failure, start, end, llm_server.stall_s)
    assert end["attributes"]["streamEnd"] == "error" and end["attributes"]["chunkCount"] == 2
    assert ms(end["endedAt"]) >= deadline
    assert end["attributes"]["responseModel"] == "gpt-local-2026-01-01"  # what arrived before the stall


@pytest.mark.parametrize("mode", ["stream", "astream", "helper", "ahelper"])
def test_a_stream_the_consumer_closes_early_ends_then_as_cancelled(llm_app, llm_records, llm_server, mode):
    summary, records = call(llm_app.ask_openai, llm_records, llm_server, mode=mode, read=2)
    assert summary.get("chunks", summary.get("events")) == 2
    _start, end = generation(records)
    assert end["status"] == "cancelled"
    # the helper yields several events per chunk; closing it closes the HTTP response, not the stream
    assert end["attributes"]["streamEnd"] == "closed" and 1 <= end["attributes"]["chunkCount"] <= 2
    action = one([r for r in records if r["type"] == "span:start" and r["name"] == "ask openai"])
    action_end = one([r for r in records if r["type"] == "span:end" and r["spanId"] == action["spanId"]])
    assert ms(end["endedAt"]) <= ms(action_end["endedAt"])  # closed by the consumer, not by a collector later


def test_a_stream_the_consumer_drops_unclosed_ends_when_it_is_freed(llm_app, llm_records, llm_server):
    _summary, records = call(llm_app.ask_openai, llm_records, llm_server, mode="stream", read=2, drop=True)
    _start, end = generation(records)
    assert end["status"] == "cancelled" and end["attributes"]["streamEnd"] == "abandoned"
    action = one([r for r in records if r["type"] == "span:start" and r["name"] == "ask openai"])
    action_end = one([r for r in records if r["type"] == "span:end" and r["spanId"] == action["spanId"]])
    assert ms(end["endedAt"]) <= ms(action_end["endedAt"])


def test_with_record_content_the_messages_output_and_tool_arguments_are_recorded(
        llm_app, llm_records, llm_server, with_content):
    _summary, records = call(llm_app.ask_openai, llm_records, llm_server, prompt="Weather? [tool] Zanzibar")
    start, _end = generation(records)
    messages = one(artifacts(records, start["spanId"], "messages"))["preview"]["messages"]
    assert messages[1] == {"role": "user", "content": "Weather? [tool] Zanzibar"}
    output = one(artifacts(records, start["spanId"], "output"))["preview"]
    assert output[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    requested = one(events(records, start["spanId"], "tool.requested"))["attributes"]
    assert requested["arguments"] == TOOL_ARGS


def test_a_streamed_answer_with_content_is_recorded_as_the_assembled_message(
        llm_app, llm_records, llm_server, with_content):
    summary, records = call(llm_app.ask_openai, llm_records, llm_server, mode="stream")
    assert summary["text"] == ANSWER
    start, _end = generation(records)
    assert one(artifacts(records, start["spanId"], "output"))["preview"] == [{"role": "assistant", "content": ANSWER}]


def test_outside_an_action_the_instrumented_client_records_nothing(llm_app, llm_records, llm_server):
    import openai

    from cruxcelery.integrations.openai import instrument_openai, is_instrumented, uninstrument_openai

    client = instrument_openai(openai.OpenAI(base_url=llm_server.openai_base_url, api_key="k", max_retries=0))
    assert instrument_openai(client) is client and is_instrumented(client)  # idempotent
    response = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert response.choices[0].message.content == ANSWER
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert not isinstance(stream, StreamWrapper)  # not even wrapped: the client's own stream
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ANSWER
    uninstrument_openai(client)
    assert not is_instrumented(client)
    time.sleep(0.2)
    assert llm_records.records == []
