"""The context envelope in the task header ``crux``: whatever arrives there (malformed, oversized,
forged, not JSON, not even text), decoding never raises; it yields an envelope only when the header
is one the codec would accept, and a task carrying a malformed header still runs, as a new root."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from cruxcelery.core.envelope import HEADER, Envelope, EnvelopeCodec
from cruxcelery.telemetry import ids
from tests.properties import app as props
from tests.properties.helpers import PROPERTY, hostile_text, hostile_values, json_values, mostly, realise

KEY = b"property-test-signing-key"
FIELDS = list(Envelope.model_fields)


def _valid(draw: st.DrawFn) -> dict[str, Any]:
    run = ids.run_id()
    return {"v": 1, "kind": draw(st.sampled_from(["continuation", "detached"])), "operation_id": run,
            "run_id": run, "trace_id": ids.trace_id(), "parent_span_id": ids.span_id(),
            "segment_id": ids.segment_id(), "owner": draw(st.booleans()),
            "run_name": draw(st.one_of(st.none(), st.text(max_size=20))),
            "flow_id": draw(st.one_of(st.none(), st.just("flow_1"))),
            "label": draw(st.one_of(st.none(), hostile_text))}


@st.composite
def headers(draw: st.DrawFn) -> Any:
    """What a ``crux`` header may hold: a real envelope (signed or not), one spoilt field by field,
    JSON that is not an envelope, text that is not JSON, bytes, objects, huge values."""
    shape = draw(mostly(st.sampled_from(["spoilt", "spoilt-json", "valid-json"]), st.sampled_from(
        ["text", "bytes", "value", "huge", "deep"])))
    if shape == "text":
        return draw(hostile_text)
    if shape == "bytes":
        return draw(st.binary(max_size=64))
    if shape == "value":
        return realise(draw(hostile_values))
    if shape == "huge":
        return json.dumps({**_valid(draw), "label": "x" * draw(st.integers(3000, 70_000))})
    if shape == "deep":
        depth = draw(st.integers(10, 50_000))
        return "[" * depth + "]" * depth
    envelope = _valid(draw)
    if shape != "valid-json":
        for _ in range(draw(st.integers(1, 3))):
            field = draw(st.sampled_from([*FIELDS, "extra", "headers"]))
            if draw(st.booleans()):
                envelope.pop(field, None)
            else:
                envelope[field] = draw(st.one_of(json_values, hostile_text, st.just("0" * 64)))
    if draw(st.booleans()):
        envelope["sig"] = draw(st.one_of(st.just("0" * 64), st.text(alphabet="0123456789abcdef", min_size=64,
                                                                   max_size=64)))
    return json.dumps(envelope) if shape != "spoilt" else envelope


def _accepts(codec: EnvelopeCodec, raw: Any, signed: bool) -> Envelope | None:
    """What the codec's contract says ``raw`` decodes to (an independent reading of it)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > codec.max_bytes:
            return None
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return None
    if not isinstance(raw, dict):
        return None
    try:
        envelope = Envelope.model_validate(raw)
    except Exception:
        return None
    if signed and (envelope.sig is None or envelope.sig != codec.sign(envelope).sig):
        return None
    return envelope


@given(raw=headers(), signed=st.booleans())
@example(raw=b"\xff\xfe not utf-8", signed=False)
@example(raw="[" * 100_000, signed=False)
@example(raw='{"v": 1, "kind": "continuation", "run_id": "\ud800"}', signed=False)
@example(raw={"v": 1, "kind": "detached", "label": object()}, signed=True)
@PROPERTY
def test_decoding_any_header_never_raises_and_only_yields_a_valid_envelope(raw: Any, signed: bool) -> None:
    codec = EnvelopeCodec(max_bytes=4096, signing_key=KEY if signed else None)
    decoded = codec.decode(raw)
    event("decoded" if decoded is not None else "ignored")
    if decoded is None:
        return
    assert isinstance(decoded, Envelope)
    assert decoded == _accepts(codec, raw, signed) or isinstance(raw, dict)
    again = codec.decode(codec.encode(decoded))  # what it decoded to travels again unchanged
    assert again is not None and again.run_id == decoded.run_id and again.trace_id == decoded.trace_id


@pytest.mark.usefixtures("props_worker")
@given(raws=st.lists(headers(), min_size=5, max_size=5))
@example(raws=["{not json", b"\x00\x01", "[" * 5000, '{"v": 1}', json.dumps({"sig": "0" * 64})])
@settings(PROPERTY, max_examples=60)
def test_a_task_with_any_crux_header_runs_as_the_header_says_or_as_a_new_root(raws: list[Any]) -> None:
    """On top of the 1,000 examples above, end to end: 60 examples of five headers each, 300
    headers through a real worker (each costs a task round trip)."""
    sent = []
    for raw in raws:
        header = raw if isinstance(raw, str | dict) else repr(raw)  # what a JSON message can carry
        if isinstance(header, dict):
            try:
                json.dumps(header)
            except (TypeError, ValueError):
                header = repr(header)
        sent.append((header, props.app.send_task("p.echo", kwargs={}, headers={HEADER: header})))
    codec = props.crux.codec
    for header, result in sent:
        out = result.get(timeout=10)
        envelope = codec.decode(header)
        event("ignored" if envelope is None else envelope.kind)
        if envelope is None or envelope.kind == "detached":  # a root run of its own (linked, when detached)
            assert out["runId"] == out["operationId"], out
            assert envelope is None or out["runId"] != envelope.run_id, out
        else:
            assert out["runId"] == envelope.run_id and out["traceId"] == envelope.trace_id, out
