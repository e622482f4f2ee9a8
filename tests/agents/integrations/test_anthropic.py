"""``instrument_anthropic``: the real ``anthropic`` client, sync and async, plain and streamed (raw
``stream=True`` and the ``messages.stream`` helper), against a local server speaking the messages
wire format (named server-sent events). Each call is one generation span with usage, response
model, stop reason, its deadline and the ``tool_use`` blocks the model asked for; no content by
default."""

from __future__ import annotations

import pytest

from cruxcelery.devtools.graph import build_graph
from cruxcelery.devtools.reconcile import reconcile
from tests.agents.helpers import artifacts, events, one, settled
from tests.agents.integrations.checks import (
    assert_no_content,
    assert_timed_out,
    call,
    generation,
    ms,
    requested_tools,
    wait_start,
)
from tests.agents.llm_server import ANSWER, ANTHROPIC_USAGE, TOOL_ARGS

MODEL = "claude-local"
STREAMED = {"stream", "astream", "helper", "ahelper"}


def test_a_plain_call_is_one_generation_with_usage_response_model_stop_reason_and_deadline(
        llm_app, llm_records, llm_server):
    summary, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, timeout=4.0, max_retries=2,
                            prompt="Is it sunny? The secret plan is Zanzibar.")
    assert summary["text"] == ANSWER and summary["model"] == "claude-local-2026-01-01"
    start, end = generation(records)
    assert (start["name"], start["primitive"], start["model"], start["provider"]) == (
        "chat claude-local", "generation.call", MODEL, "anthropic")
    assert start["attributes"]["max_tokens"] == 256
    assert start["attributes"]["timeoutMs"] == 12000  # 4 s per attempt, 3 attempts
    assert end["status"] == "ok"
    assert end["metrics"] == {"inputTokens": ANTHROPIC_USAGE["input_tokens"],
                              "outputTokens": ANTHROPIC_USAGE["output_tokens"], "totalTokens": 28}
    assert end["attributes"]["responseModel"] == "claude-local-2026-01-01"
    assert end["attributes"]["finishReasons"] == ["end_turn"] and end["attributes"]["responseId"].startswith("msg_")
    messages = one(artifacts(records, start["spanId"], "messages"))["preview"]
    assert [m["role"] for m in messages["messages"]] == ["system", "user"]  # the system prompt is part of it
    assert_no_content(records, "Zanzibar", ANSWER, "terse weather")


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream", "helper", "ahelper"])
def test_the_tool_use_blocks_the_model_asks_for_are_recorded_under_its_generation(
        llm_app, llm_records, llm_server, mode):
    summary, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, mode=mode,
                            prompt="Weather? [tool]")
    start, end = generation(records)
    assert start["primitive"] == ("generation.stream" if mode in STREAMED else "generation.call")
    assert end["status"] == "ok"
    assert end["metrics"]["inputTokens"] == 19 and end["metrics"]["outputTokens"] == 9
    assert end["attributes"]["finishReasons"] == ["tool_use"]
    assert end["attributes"]["responseModel"] == "claude-local-2026-01-01"
    if mode in STREAMED:
        assert end["attributes"]["streamEnd"] == "exhausted"
        assert end["attributes"]["chunkCount"] == 11  # every event but the ping
    tool = one(requested_tools(records, start["spanId"]))
    if "calls" in summary:  # what the user's code got is what the server sent
        assert [tuple(c) for c in summary["calls"]] == [(tool["attributes"]["toolCallId"], "get_weather", TOOL_ARGS)]
    if mode == "helper":
        assert summary["text"] == "Let me look."  # text_stream read through the recorded stream
    assert tool["toolName"] == "get_weather" and tool["attributes"]["executed"] is False
    assert tool["attributes"]["toolCallId"].startswith("toolu_")
    assert one(events(records, start["spanId"], "tool.requested"))["attributes"]["arguments"] == {
        "type": "object", "keys": 1}
    assert_no_content(records, "Paris", "Let me look")


def test_a_tool_the_code_runs_with_the_models_call_id_is_recorded_as_executed(llm_app, llm_records, llm_server):
    summary, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, mode="helper",
                            prompt="Weather? [tool]", run_tool=True)
    assert summary["ran"] == ["sunny in Paris"]
    start, _end = generation(records)
    assert requested_tools(records, start["spanId"]) == []
    ran = one([r for r in records if r["type"] == "span:start" and r["primitive"] == "tool.call"])
    assert ran["attributes"]["toolCallId"] == summary["calls"][0][0]


@pytest.mark.parametrize(("status", "error", "requests"), [(400, "BadRequestError", 1), (529, "OverloadedError", 2)])
def test_an_error_response_is_one_failed_generation_with_its_evidence(llm_app, llm_records, llm_server, status,
                                                                      error, requests):
    failure, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, max_retries=1,
                            prompt=f"hi [error:{status}]")
    assert isinstance(failure, Exception)
    start, end = generation(records)
    assert end["status"] == "error" and end["error"]["name"] == error
    exception = one(events(records, start["spanId"], "exception"))["attributes"]
    assert exception["exception.type"].endswith(error)
    raw = one(artifacts(records, start["spanId"], "error.raw"))["preview"]
    assert raw["status_code"] == status and raw["request_id"].startswith("req_ant_")
    assert len(llm_server.received("/v1/messages")) == requests  # retries inside the one call
    assert one([r for r in records if r["type"] == "run:end"])["status"] == "error"


def test_an_error_event_in_the_middle_of_a_stream_fails_its_generation(llm_app, llm_records, llm_server):
    failure, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, mode="stream",
                            prompt="go [stream-error]")
    assert "overloaded_error" in str(failure)
    start, end = generation(records)
    assert end["status"] == "error" and end["attributes"]["streamEnd"] == "error"
    assert end["attributes"]["chunkCount"] == 3
    assert end["metrics"] == {"inputTokens": 19, "outputTokens": 1, "totalTokens": 20}  # message_start's usage
    assert "Overloaded" in one(events(records, start["spanId"], "exception"))["attributes"]["exception.message"]
    assert requested_tools(records, start["spanId"]) == []


@pytest.mark.parametrize("mode", ["stream", "helper"])
def test_a_stream_that_stalls_past_its_deadline_shows_incomplete_until_the_client_gives_up(
        llm_app, llm_records, llm_server, mode):
    result = llm_app.ask_anthropic.delay({"base_url": llm_server.url, "model": MODEL, "mode": mode,
                                          "prompt": "go [stall]", "timeout": 1.5})
    start = wait_start(llm_records)
    deadline = ms(start["deadlineAt"])
    assert start["attributes"]["timeoutMs"] == 1500 and abs(deadline - ms(start["startedAt"]) - 1500) <= 50
    graph = build_graph(start["runId"], [r for r in llm_records.records if r["runId"] == start["runId"]])
    assert graph.spans[start["spanId"]].running
    reconcile(graph, now_ms=deadline + 1)
    assert graph.spans[start["spanId"]].status == "incomplete"
    assert graph.spans[start["spanId"]].reconciled_from == "operation.deadline"
    failure = result.get(timeout=30, propagate=False)
    _start, end = generation(settled(llm_records, timeout_s=30))
    assert_timed_out(failure, start, end, llm_server.stall_s)


@pytest.mark.parametrize("mode", ["stream", "astream", "helper", "ahelper"])
def test_a_stream_the_consumer_closes_early_ends_then_as_cancelled(llm_app, llm_records, llm_server, mode):
    _summary, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, mode=mode, read=2)
    _start, end = generation(records)
    assert end["status"] == "cancelled" and end["attributes"]["streamEnd"] == "closed"
    assert end["attributes"]["chunkCount"] == 2


def test_with_record_content_the_messages_output_and_tool_input_are_recorded(
        llm_app, llm_records, llm_server, with_content):
    _summary, records = call(llm_app.ask_anthropic, llm_records, llm_server, model=MODEL, mode="helper",
                             prompt="Weather? [tool] Zanzibar")
    start, _end = generation(records)
    messages = one(artifacts(records, start["spanId"], "messages"))["preview"]["messages"]
    assert messages[0]["content"] == llm_app.SYSTEM
    assert messages[1] == {"role": "user", "content": "Weather? [tool] Zanzibar"}
    output = one(artifacts(records, start["spanId"], "output"))["preview"]
    assert output["content"][0] == {"type": "text", "text": "Let me look."}
    assert output["content"][1]["name"] == "get_weather" and output["content"][1]["input"] == TOOL_ARGS
    assert one(events(records, start["spanId"], "tool.requested"))["attributes"]["arguments"] == TOOL_ARGS
