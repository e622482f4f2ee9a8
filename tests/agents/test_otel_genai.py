"""The OTel side of agent spans follows the GenAI semantic conventions, in one trace."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

_EXPORTER = InMemorySpanExporter()
_attached: list[TracerProvider] = []


@pytest.fixture()
def spans(agents_worker) -> Iterator[InMemorySpanExporter]:
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


def _wait(exporter, names, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = exporter.get_finished_spans()
        if names <= {s.name for s in found}:
            return found
        time.sleep(0.05)
    raise AssertionError(f"missing {names - {s.name for s in exporter.get_finished_spans()}}")


def test_generation_tool_and_agent_spans_carry_the_genai_attributes_in_one_trace(spans, agents_app):
    agents_app.generate.delay({"topic": "otel"}).get(timeout=15)
    found = _wait(spans, {"invoke_agent generate", "chat local-1", "execute_tool lookup"})
    by_name = {s.name: s for s in found}
    agent, chat, tool = by_name["invoke_agent generate"], by_name["chat local-1"], by_name["execute_tool lookup"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "generate" and agent.attributes["gen_ai.agent.id"] == "tester"
    assert chat.kind == SpanKind.CLIENT
    assert {k: chat.attributes[k] for k in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.temperature")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "local", "gen_ai.request.model": "local-1",
        "gen_ai.response.model": "local-1-2026", "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7,
        "gen_ai.request.temperature": 0.0}
    assert tuple(chat.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert "gen_ai.input.messages" not in chat.attributes, "content is opt-in"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "lookup" and tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert {s.context.trace_id for s in (agent, chat, tool)} == {agent.context.trace_id}
    assert chat.parent.span_id == agent.context.span_id and tool.parent.span_id == agent.context.span_id


def test_a_failing_tool_sets_error_type_on_its_span(spans, agents_app):
    agents_app.tools.delay({"mode": "fail"}).get(timeout=15)
    tool = next(s for s in _wait(spans, {"execute_tool explode"}) if s.name == "execute_tool explode")
    assert tool.attributes["error.type"] == "ValueError" and not tool.status.is_ok


def test_parallel_branches_are_otel_children_of_the_composition_span(spans, agents_app):
    agents_app.fan_out.delay({"topic": "otel"}).get(timeout=15)
    found = _wait(spans, {"fan out", "a", "b", "invoke_agent parallel"})
    composition = next(s for s in found if s.name == "fan out")
    branches = [s for s in found if s.name in {"a", "b"} and s.context.trace_id == composition.context.trace_id]
    assert {b.parent.span_id for b in branches} == {composition.context.span_id}
    chats = [s for s in found if s.name == "chat local-1" and s.context.trace_id == composition.context.trace_id]
    assert {c.parent.span_id for c in chats} == {b.context.span_id for b in branches}
