"""With opentelemetry-instrumentation-celery enabled too, there is one trace tree, not two."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import wait_span

_EXPORTER = InMemorySpanExporter()


@pytest.fixture()
def instrumented(celery_test_app) -> Iterator[InMemorySpanExporter]:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    # the instrumentation finds the publishing task in Celery's current app; other tests create apps
    celery_test_app.app.set_current()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    _EXPORTER.clear()
    try:
        yield _EXPORTER
    finally:
        instrumentor.uninstrument()


def _wait_otel(exporter, predicate, timeout_s=10.0):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate(exporter.get_finished_spans()):
        time.sleep(0.05)
    return exporter.get_finished_spans()


def test_crux_and_celery_instrumentation_spans_form_one_tree(sink, celery_test_app, instrumented):
    celery_test_app.parent.delay({"topic": "otel"}).get(timeout=10)
    wait_span(sink, "leaf")
    spans = _wait_otel(instrumented, lambda s: sum(x.name.startswith("run/t.") for x in s) >= 3)
    # the worker keeps running other work (timer wake-ups, sweeps): this run's spans are the ones
    # in the trace of its first publish
    root = next(s for s in spans if s.name == "apply_async/t.parent")
    mine = [s for s in spans if s.context.trace_id == root.context.trace_id]
    crux_spans = [s for s in mine if s.instrumentation_scope.name == "cruxcelery"]
    celery_spans = [s for s in mine if s.instrumentation_scope.name != "cruxcelery"]
    assert {s.name for s in crux_spans} >= {"invoke_agent parent", "child", "leaf", "call child", "call grandchild"}
    assert {"run/t.parent", "run/t.child", "run/t.leaf"} <= {s.name for s in celery_spans}
    ids = {s.context.span_id for s in mine}
    roots = [s for s in mine if s.parent is None or s.parent.span_id not in ids]
    assert [r.name for r in roots] == ["apply_async/t.parent"]
    named = [s for s in spans if s.name in {"invoke_agent parent", "child", "leaf", "call child", "call grandchild"}]
    assert {s.context.trace_id for s in named} == {root.context.trace_id}, "one trace id for the whole run"


def test_crux_records_carry_the_otel_trace_id(sink, celery_test_app, instrumented):
    celery_test_app.parent.delay({"topic": "otel"}).get(timeout=10)
    leaf = wait_span(sink, "leaf")[0]
    spans = _wait_otel(instrumented, lambda s: any(x.name == "leaf" for x in s))
    otel_leaf = next(s for s in spans if s.name == "leaf")
    assert leaf["traceId"] == format(otel_leaf.context.trace_id, "032x")
    assert leaf["spanId"] == format(otel_leaf.context.span_id, "016x")
