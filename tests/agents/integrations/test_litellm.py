"""``instrument_litellm``: the real ``litellm.completion`` / ``acompletion``, plain and streamed,
routed by LiteLLM to the local wire-format server as its ``openai`` and ``anthropic`` providers.
Each call is one generation span with LiteLLM's reading of model and provider, usage, response
model, finish reasons, cost when LiteLLM knows the price, and the tool calls asked for."""

from __future__ import annotations

import pytest

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
from tests.agents.llm_server import TOOL_ARGS

STREAMED = {"stream", "astream"}
# LiteLLM marks TypedDict items `ReadOnly`, and pydantic warns (UserWarning) each time it builds a
# schema for one, lazily, in the middle of a stream: LiteLLM silences these warnings when it is
# imported, but the suite's "error" filter, set again for every test, would turn each one into a
# failure of the stream itself in the worker thread (LiteLLM 1.108 put `ReadOnly` on the fields
# every chat stream reads). The same filter as LiteLLM's own:
pytestmark = [pytest.mark.filterwarnings(r"ignore:.*`ReadOnly` qualifier:UserWarning"),
              pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")]


@pytest.fixture(autouse=True)
def _quiet_litellm() -> None:
    import litellm

    litellm.suppress_debug_info = True


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_each_completion_is_one_generation_with_the_tool_calls_asked_for(llm_app, llm_records, llm_server, mode):
    summary, records = call(llm_app.ask_litellm, llm_records, llm_server, model="openai/gpt-local", mode=mode,
                            prompt="Weather? [tool] Zanzibar", timeout=6.0, max_retries=1)
    start, end = generation(records)
    assert start["primitive"] == ("generation.stream" if mode in STREAMED else "generation.call")
    assert (start["name"], start["model"], start["provider"]) == ("chat gpt-local", "gpt-local", "openai")
    assert start["attributes"]["source"] == "litellm.completion" and start["attributes"]["timeoutMs"] == 12000
    assert end["status"] == "ok"
    assert end["metrics"]["inputTokens"] == 21 and end["metrics"]["outputTokens"] == 7
    assert end["attributes"]["finishReasons"] == ["tool_calls"]
    assert end["attributes"]["responseModel"].startswith("gpt-local")
    tool = one(requested_tools(records, start["spanId"]))
    assert tool["toolName"] == "get_weather" and tool["attributes"]["executed"] is False
    if "calls" in summary:
        assert [tuple(c) for c in summary["calls"]] == [(tool["attributes"]["toolCallId"], "get_weather", TOOL_ARGS)]
    assert_no_content(records, "Zanzibar", "Paris")
    assert len(llm_server.received("/v1/chat/completions")) == 1


def test_the_anthropic_provider_through_litellm_is_recorded_as_anthropic(llm_app, llm_records, llm_server):
    summary, records = call(llm_app.ask_litellm, llm_records, llm_server, model="anthropic/claude-local",
                            prompt="Weather? [tool]", run_tool=True)
    assert summary["ran"] == ["sunny in Paris"]
    start, end = generation(records)
    assert (start["model"], start["provider"]) == ("claude-local", "anthropic")
    assert end["metrics"]["inputTokens"] == 19 and end["metrics"]["outputTokens"] == 9
    assert end["attributes"]["responseModel"] == "claude-local-2026-01-01"
    assert requested_tools(records, start["spanId"]) == []  # the code ran it
    ran = one([r for r in records if r["type"] == "span:start" and r["primitive"] == "tool.call"])
    assert ran["attributes"]["toolCallId"] == summary["calls"][0][0]
    assert len(llm_server.received("/v1/messages")) == 1


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_the_cost_litellm_computes_is_recorded_when_it_knows_the_models_price(llm_app, llm_records, llm_server, mode):
    _summary, records = call(llm_app.ask_litellm, llm_records, llm_server, model="openai/gpt-4o-mini", mode=mode)
    _start, end = generation(records)
    assert end["metrics"]["costUsd"] > 0 and end["metrics"]["totalTokens"] == 28


def test_an_error_response_is_one_failed_generation_with_its_evidence(llm_app, llm_records, llm_server):
    failure, records = call(llm_app.ask_litellm, llm_records, llm_server, model="openai/gpt-local",
                            prompt="hi [error:400]")
    assert isinstance(failure, Exception)
    start, end = generation(records)
    assert end["status"] == "error" and end["error"]["name"] == "BadRequestError"
    raw = one(artifacts(records, start["spanId"], "error.raw"))["preview"]
    assert raw["status_code"] == 400 and raw["llm_provider"] == "openai"
    assert one(events(records, start["spanId"], "exception"))["attributes"]["exception.type"].startswith("litellm.")


def test_a_stalled_stream_records_its_deadline_and_the_timeout(llm_app, llm_records, llm_server):
    result = llm_app.ask_litellm.delay({"base_url": llm_server.url, "model": "openai/gpt-local", "mode": "stream",
                                        "prompt": "go [stall]", "timeout": 1.5})
    start = wait_start(llm_records)
    assert start["attributes"]["timeoutMs"] == 1500
    assert abs(ms(start["deadlineAt"]) - ms(start["startedAt"]) - 1500) <= 50
    failure = result.get(timeout=30, propagate=False)
    from tests.agents.helpers import settled

    _start, end = generation(settled(llm_records, timeout_s=30))
    # LiteLLM reports the read timeout mid-stream in an error of its own that says "timed out"
    assert_timed_out(failure, start, end, llm_server.stall_s)
    assert end["attributes"]["streamEnd"] == "error"
