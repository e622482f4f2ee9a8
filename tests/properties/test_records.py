"""Record normalisation: whatever user code hands telemetry (attributes, artifact values, span and
event names, errors with any message), every record the runtime builds is a valid v5 record
(``cruxcelery.telemetry.records``), encodes for the wire, passes the devtools ingest checks, and
previews (``json_safe``) stay within their bounds: depth, items, finite JSON. Nothing here raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cruxcelery.devtools.validation import check_record
from cruxcelery.telemetry import ids
from cruxcelery.telemetry.http.chunking import encode_record
from cruxcelery.telemetry.preview import MAX_DEPTH, MAX_ITEMS
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.records import validate_record
from cruxcelery.telemetry.spans import RunRef, Segment
from cruxcelery.testing import MemorySink
from tests.properties.app import Unprintable
from tests.properties.helpers import PROPERTY, Deep, depth, hostile_text, hostile_values, mostly, realise

STATUSES = ["ok", "error", "cancelled", "suspended", "skipped", "running", "blocked"]


class Hostile:
    """An object whose repr fails."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis shows a failing example
        printer.text("Hostile()")


attributes = st.dictionaries(st.one_of(hostile_text, st.integers(), st.sampled_from(["agentId", "toolName"])),
                             st.one_of(hostile_values, st.builds(Hostile), st.builds(Unprintable)), max_size=4)
values = st.one_of(  # what an artifact may be handed: anything, past every preview bound too
    hostile_values, st.builds(Hostile), st.builds(Unprintable),
    st.integers(MAX_ITEMS - 1, MAX_ITEMS + 3).map(lambda n: list(range(n))),  # cheap to draw, unlike st.lists
    st.integers(MAX_ITEMS - 1, MAX_ITEMS + 3).map(lambda n: {f"k{i}": [i] for i in range(n)}),
    st.builds(Deep, st.integers(1, 3000), st.just(0), st.sampled_from(["list", "dict"])))
errors = st.one_of(st.none(), st.builds(RuntimeError, hostile_text), st.builds(Unprintable),
                   st.builds(ValueError, hostile_values.map(realise)))


def _bounded(value: Any) -> None:
    """What previews promise: depth, items per container, finite JSON."""
    assert depth(value) <= MAX_DEPTH + 1
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            assert len(item) <= MAX_ITEMS + 1 and all(isinstance(k, str) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            assert len(item) <= MAX_ITEMS + 1
            stack.extend(item)
        else:
            assert item is None or isinstance(item, str | int | float)
    json.dumps(value, allow_nan=False)


@given(name=mostly(st.text(max_size=20), hostile_text), attrs=attributes, event_attrs=attributes,
       value=values, note=hostile_text, error=errors,
       status=st.sampled_from(STATUSES))
@PROPERTY
def test_every_record_built_from_any_input_is_valid_v5_and_encodes(
        name: str, attrs: dict[Any, Any], event_attrs: dict[Any, Any], value: Any, note: str,
        error: BaseException | None, status: str) -> None:
    value = realise(value)
    sink = MemorySink(validate=False)  # validated below, once
    run = ids.run_id()
    segment = Segment(Recorder([sink]), RunRef(run, run, ids.trace_id()))
    segment.run_start(name, "custom.operation", attributes=attrs)
    span = segment.start_span(name, "custom.operation", parent=None, attributes=attrs, flow_id="flow_1")
    span.event(name, event_attrs)
    span.artifact("output", value)
    span.artifact("note", note, text=True)  # text artifacts hold text (error stacks)
    span.end(status if error is None else "error", error)
    segment.run_end("error" if error is not None else "ok", span.started_at, error)
    records = sink.records
    assert [r["type"] for r in records][:2] == ["run:start", "span:start"] and records[-1]["type"] == "run:end"
    for record in records:
        validate_record(record)
        check_record(record)
        encoded = encode_record(record)
        assert json.loads(encoded.data) is not None
        for field in ("attributes", "preview"):
            if field in record:
                _bounded(record[field])
