"""One trace per flow in OpenTelemetry: the traced request that starts a flow, every execution
segment of the flow, its steps and the actions they run share the request's trace; a traced
request that signals the flow appears in that trace too, linked to its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cruxcelery import FlowCompleted
from tests.app_flows import writer
from tests.flowhelpers import wait_status

_EXPORTER = InMemorySpanExporter()
_attached: list[TracerProvider] = []


@pytest.fixture()
def spans(celery_test_app) -> Iterator[InMemorySpanExporter]:
    """The SDK provider (set once per process, as in ``test_otel_interop``) exporting to memory."""
    from tests.test_otel_interop import _EXPORTER as INTEROP_EXPORTER

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set it as test_otel_interop would: it may run after us
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(INTEROP_EXPORTER))
        trace.set_tracer_provider(provider)
    if provider not in _attached:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _attached.append(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _wait(exporter: InMemorySpanExporter, ok: Callable[[Sequence[ReadableSpan]], bool],
          timeout_s: float = 15.0) -> Sequence[ReadableSpan]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = exporter.get_finished_spans()
        if ok(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_the_start_request_segments_and_steps_share_one_trace(worker, spans):
    tracer = trace.get_tracer("tests.web")
    with tracer.start_as_current_span("POST /drafts/d-otel/writer") as request:
        flow_id = writer.start({"draft_id": "d-otel"})
    wait_status(writer, flow_id, "suspended")
    with tracer.start_as_current_span("POST /flows/approval") as approval:
        writer.signal(flow_id, "approval", {"approved": True, "feedback": "ok"})
    assert isinstance(writer.result(flow_id, timeout_s=15), FlowCompleted)

    def flow_spans(found: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        return [s for s in found if (s.attributes or {}).get("crux.flow_id") == flow_id]

    found = _wait(spans, lambda f: {"plan", "write"} <= {s.name for s in flow_spans(f)}
                  and sum(s.name == "t-writer" for s in flow_spans(f)) >= 2)
    trace_id = request.get_span_context().trace_id
    mine = flow_spans(found)
    segments = [s for s in mine if s.name == "t-writer"]
    assert len(segments) >= 2, [s.name for s in mine]
    assert {s.context.trace_id for s in mine} == {trace_id}, "one trace for the whole flow"
    first = min(segments, key=lambda s: s.start_time or 0)
    assert first.parent is not None and first.parent.span_id == request.get_span_context().span_id
    plan = next(s for s in mine if s.name == "plan")
    attrs = plan.attributes or {}
    assert attrs["crux.step"] == "plan" and attrs["crux.attempt"] == 1 and attrs["crux.run_id"]
    assert {s.attributes["crux.run_id"] for s in mine if s.attributes} == {attrs["crux.run_id"]}
    # the durable child the plan step ran is an action span in the same trace
    leaf = [s for s in found if s.name == "leaf" and s.context.trace_id == trace_id]
    assert leaf and (leaf[0].attributes or {}).get("crux.flow_id") == flow_id
    # the signal: a span in the flow's trace, linked to the request that sent it
    signal = next(s for s in mine if s.name == "t-writer · signal")
    assert signal.context.trace_id == trace_id
    assert [link.context.span_id for link in signal.links] == [approval.get_span_context().span_id]


def test_action_spans_carry_the_run_id_and_the_actions_attributes(worker, spans, celery_test_app):
    celery_test_app.parent.delay({"topic": "otel-attrs"}).get(timeout=10)
    # the whole tree (its grandchild included) ends here, not in the next test's records
    found = _wait(spans, lambda f: {"invoke_agent parent", "child", "leaf"} <= {s.name for s in f})
    parent = next(s for s in found if s.name == "invoke_agent parent")  # an agent.run root (GenAI conventions)
    attrs = parent.attributes or {}
    assert attrs["agentId"] == "tester" and attrs["crux.run_id"] and attrs["crux.primitive"] == "agent.run"
