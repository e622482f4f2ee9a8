"""The OTel side of a recorded client call: a ``chat {model}`` CLIENT span with the GenAI
attributes, under the action's span, in the action's trace (the SDK's in-memory exporter)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.agents.integrations.checks import call, generation

_EXPORTER = InMemorySpanExporter()
_attached: list[TracerProvider] = []
pytestmark = [pytest.mark.filterwarnings("ignore:Item 'summary' on TypedDict class:UserWarning"),
              pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")]


@pytest.fixture()
def otel(llm_worker) -> Iterator[InMemorySpanExporter]:
    """The process's SDK provider (set once, as tests/test_otel_interop.py sets it) exporting here too."""
    from tests.test_otel_interop import _EXPORTER as INTEROP_EXPORTER

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(INTEROP_EXPORTER))
        trace.set_tracer_provider(provider)
    if provider not in _attached:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _attached.append(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _wait(exporter: InMemorySpanExporter, names: set[str], timeout_s: float = 15.0) -> Sequence[ReadableSpan]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = exporter.get_finished_spans()
        if names <= {s.name for s in found}:
            return found
        time.sleep(0.05)
    raise AssertionError(f"missing {names - {s.name for s in exporter.get_finished_spans()}}")


CASES = [
    ("ask_openai", {"model": "gpt-local"}, "ask openai", "chat gpt-local", "openai", "gpt-local", 21, 7),
    ("ask_openai", {"model": "gpt-local", "mode": "astream"}, "ask openai", "chat gpt-local", "openai",
     "gpt-local", 21, 7),
    ("ask_anthropic", {"model": "claude-local"}, "ask anthropic", "chat claude-local", "anthropic", "claude-local",
     19, 9),
    ("ask_anthropic", {"model": "claude-local", "mode": "helper"}, "ask anthropic", "chat claude-local",
     "anthropic", "claude-local", 19, 9),
    ("ask_litellm", {"model": "openai/gpt-local"}, "ask litellm", "chat gpt-local", "openai", "gpt-local", 21, 7),
]


@pytest.mark.parametrize(("action", "fields", "action_span", "name", "provider", "model", "tokens_in", "tokens_out"),
                         CASES, ids=["openai", "openai-astream", "anthropic", "anthropic-helper", "litellm"])
def test_a_client_call_is_a_chat_span_with_the_genai_attributes_in_the_actions_trace(
        llm_app, llm_records, llm_server, otel, action, fields, action_span, name, provider, model, tokens_in,
        tokens_out):
    _summary, records = call(getattr(llm_app, action), llm_records, llm_server, prompt="Weather? [tool]", **fields)
    found = _wait(otel, {action_span, name})
    mine = [s for s in found if s.instrumentation_scope.name == "cruxcelery"]
    root = next(s for s in mine if s.name == action_span)
    chat = next(s for s in mine if s.name == name)
    assert chat.kind == SpanKind.CLIENT
    assert chat.context.trace_id == root.context.trace_id and chat.parent.span_id == root.context.span_id
    attributes = dict(chat.attributes or {})
    assert {k: attributes.get(k) for k in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out}
    assert str(attributes["gen_ai.response.model"]).startswith(model)
    assert attributes["gen_ai.response.finish_reasons"] in (("tool_calls",), ("tool_use",))
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes  # content off
    # the Crux record and the OTel span are the same span, in the same trace
    start, _end = generation(records)
    assert start["spanId"] == format(chat.context.span_id, "016x")
    assert start["traceId"] == format(chat.context.trace_id, "032x")
    # what the client itself traces (the anthropic SDK has its own spans) nests under the generation
    sdk = [s for s in found if s.instrumentation_scope.name == "com.anthropic.sdk.python"
           and s.context.trace_id == chat.context.trace_id]
    assert len(sdk) == (1 if action == "ask_anthropic" else 0)
    assert all(s.parent is not None and s.parent.span_id == chat.context.span_id for s in sdk)


def test_a_failed_call_carries_error_type_on_its_chat_span(llm_app, llm_records, llm_server, otel):
    call(llm_app.ask_openai, llm_records, llm_server, prompt="hi [error:400]")
    chat = next(s for s in _wait(otel, {"chat gpt-local"}) if s.name == "chat gpt-local")
    assert chat.attributes["error.type"] == "BadRequestError"
    assert not chat.status.is_ok
