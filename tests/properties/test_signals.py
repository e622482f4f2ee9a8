"""Signals: any signal name, ``signal_id`` and payload (any flow id: ``test_ids``). Only typed
``CruxError``s escape; a refused signal writes nothing; an accepted one is stored exactly as the
JSON it validated to, within ``CRUX_SIGNAL_MAX_BYTES``, once per ``signal_id``, and the flow stays
readable. No worker runs here: the flows stay
``pending`` and signals to them are buffered."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from cruxcelery import cancel_flow, signal_flow
from cruxcelery.flows.codec import MAX_DEPTH
from cruxcelery.flows.errors import FlowNotFound, FlowNotWaiting, InvalidFlowId, SignalRejected
from tests.properties import app as props
from tests.properties.helpers import (
    ID_RE,
    NAME_RE,
    PROPERTY,
    SURROGATES,
    Deep,
    depth,
    hostile_text,
    hostile_values,
    identifiers,
    json_text,
    mostly,
    only_crux_errors,
    realise,
    valid_ids,
    valid_names,
)

FLOWS: dict[str, str] = {}
_signal_ids = itertools.count()
SENT: set[tuple[str, str]] = set()  # (flow id, signal_id) accepted so far


@pytest.fixture(scope="module", autouse=True)
def flows(db: Any) -> Iterator[None]:
    db.client.flushdb()
    FLOWS["declared"] = props.declared.start({"token": "signals"})
    FLOWS["free"] = props.free.start({"token": "signals"})
    FLOWS["finished"] = props.free.start({"token": "finished"})
    cancel_flow(FLOWS["finished"], "finished before the signals", crux=props.crux)
    FLOWS["unknown"] = "flow_never_started"
    db.client.delete(props.QUEUE)  # no worker here: the start messages are not needed
    yield
    db.client.flushdb()


approvals = st.fixed_dictionaries({"approved": st.one_of(st.booleans(), hostile_values)},
                                  optional={"note": st.one_of(hostile_text, hostile_values)})
payloads = st.one_of(
    hostile_values, approvals,
    st.integers(1900, 2100).map(lambda n: {"approved": True, "note": "n" * n}),  # around the 2,048-byte cap
    st.integers(1900, 2100).map(lambda n: "s" * n),
)


def _expected(target: str, name: Any, signal_id: Any, payload: Any) -> tuple[str, Any]:
    """``("accept", stored JSON)`` or ``("reject", the error class)``, per the API contract."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return "reject", InvalidFlowId
    if signal_id is not None and not (isinstance(signal_id, str) and ID_RE.fullmatch(signal_id)):
        return "reject", InvalidFlowId
    if target == "unknown":
        return "reject", FlowNotFound
    if target == "finished":
        return "reject", FlowNotWaiting
    if target == "declared":
        if name != "approval":
            return "reject", SignalRejected
        try:
            payload = props.Approval.model_validate(payload).model_dump(mode="json")
        except ValidationError:
            return "reject", SignalRejected
    raw = json_text(payload)
    if raw is None or len(raw.encode()) > props.SIGNAL_MAX_BYTES or depth(json.loads(raw)) > MAX_DEPTH:
        return "reject", SignalRejected
    return "accept", json.loads(raw)


RIGHT = "the name the flow waits for"
targets = mostly(st.sampled_from(["declared", "free"]), st.sampled_from(["finished", "unknown"]))
names = mostly(st.just(RIGHT), st.one_of(st.sampled_from(["approval", "anything"]), identifiers(valid_names)))


signal_ids = mostly(st.sampled_from(["none", "fresh"]), identifiers(valid_ids))


@given(target=targets, name=names, payload=payloads, signal_id=signal_ids)
@example(target="free", name="anything", payload=Deep(5000), signal_id="none")  # issue 11: RecursionError
@example(target="free", name="anything", payload=Deep(150), signal_id="none")  # stored, then unreadable
@example(target="free", name="anything", payload={"text": "lone \ud800"}, signal_id="none")  # issue 11
@example(target="declared", name="approval", payload={"approved": True, "note": "\udfff"}, signal_id="fresh")
@example(target="free", name="anything", payload="x" * 16_000_000, signal_id="none")  # issue 11: no cap
@example(target="free", name="anything", payload={"n": float("nan")}, signal_id="none")
@PROPERTY
def test_a_signal_is_stored_exactly_or_refused_with_nothing_written(db: Any, target: str, name: Any, payload: Any,
                                                                      signal_id: Any) -> None:
    payload = realise(payload)
    if name == RIGHT:
        name = "approval" if target == "declared" else "anything"
    flow_id = FLOWS[target]
    signal_id = {"none": None, "fresh": f"sig-{next(_signal_ids)}"}.get(signal_id, signal_id) \
        if isinstance(signal_id, str) else signal_id
    verdict, detail = _expected(target, name, signal_id, payload)
    event(verdict if verdict == "accept" else f"reject {detail.__name__}")
    before = db.digest()
    _, error = only_crux_errors(lambda: signal_flow(flow_id, name, payload, signal_id=signal_id, crux=props.crux))
    if verdict == "reject":
        assert isinstance(error, detail), f"expected {detail.__name__}, got {error!r}"
        assert db.digest() == before, f"a refused signal wrote to Redis: {error}"
        return
    assert error is None, f"refused: {error}"
    key = props.crux.flows.store.keys.signal(flow_id, name)
    stored = db.client.rpop(key)  # the newest pending signal: the one just sent (popped: the lists stay short)
    if signal_id is not None and (flow_id, signal_id) in SENT:
        assert stored is None, "a repeated signal_id stored its payload again"
    else:
        assert stored is not None and json.loads(stored) == detail
    if signal_id is not None:
        SENT.add((flow_id, signal_id))
    db.client.delete(props.QUEUE)  # the resume message: no worker here
    summary, error = only_crux_errors(lambda: props.free.status(flow_id))
    assert error is None and summary is not None and summary.status == "pending"


def test_the_surrogates_used_here_are_lone() -> None:
    for char in SURROGATES:
        with pytest.raises(UnicodeEncodeError):
            char.encode("utf-8")
