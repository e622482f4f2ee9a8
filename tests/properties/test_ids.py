"""Flow ids, idempotency keys and flow inputs at ``start()``, and any flow id given to the calls that
read or administer a flow. Only typed ``CruxError``s escape; a refused call writes nothing; an
accepted start leaves a readable ``pending`` flow (and the same key gives the same flow back)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from cruxcelery import FlowNotRetryable, cancel_flow, delete_flow, retry_flow
from cruxcelery.errors import InvalidArgs
from cruxcelery.flows.errors import FlowError, FlowNotFound, InvalidFlowId
from tests.properties import app as props
from tests.properties.helpers import (
    ID_RE,
    PROPERTY,
    hostile_text,
    hostile_values,
    identifiers,
    json_text,
    mostly,
    only_crux_errors,
    realise,
    unchanged,
    valid_ids,
)


@pytest.fixture(scope="module", autouse=True)
def _fresh(db: Any) -> Iterator[None]:
    db.client.flushdb()
    yield
    db.client.flushdb()


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


inputs = mostly(st.fixed_dictionaries({"token": mostly(st.text(max_size=20), hostile_text)}),
                st.one_of(hostile_values, st.fixed_dictionaries({"token": hostile_values}),
                          st.dictionaries(hostile_text, hostile_values, max_size=3)))


@given(args=inputs, flow_id=mostly(st.one_of(st.none(), valid_ids), identifiers(valid_ids)),
       idempotency_key=mostly(st.one_of(st.none(), valid_ids), identifiers(valid_ids)))
@example(args={"token": "t"}, flow_id=None, idempotency_key="bad key with spaces")  # issue 11: raw ValidationError
@example(args={"token": "t"}, flow_id=None, idempotency_key="k" * 129)
@example(args={"token": "t"}, flow_id=None, idempotency_key=42)
@example(args={"token": "t"}, flow_id=None, idempotency_key="key\ud800")
@example(args={"token": "lone \ud800"}, flow_id=None, idempotency_key="claims-its-key-first")  # left the key behind
@example(args={"token": "t"}, flow_id="flow id", idempotency_key=None)
@example(args=[1, 2], flow_id=None, idempotency_key=None)
@PROPERTY
def test_start_creates_a_readable_flow_or_refuses_with_nothing_written(db: Any, args: Any, flow_id: Any,
                                                                       idempotency_key: Any) -> None:
    args = realise(args)
    before = db.digest()
    created, error = only_crux_errors(lambda: props.free.start(args, flow_id=flow_id,
                                                               idempotency_key=idempotency_key))
    try:
        token: str | None = props.Token.model_validate(args).token
    except ValidationError:
        token = None
    well_formed = (token is not None and json_text(token) is not None
                   and (flow_id is None or _valid_id(flow_id))
                   and (idempotency_key is None or _valid_id(idempotency_key)))
    event("accepted" if error is None else f"refused: {type(error).__name__}")
    if error is not None:
        assert not well_formed, f"a well-formed start was refused: {error!r}"
        assert isinstance(error, InvalidArgs | InvalidFlowId | FlowError), repr(error)
        assert db.digest() == before, f"a refused start wrote to Redis: {error}"
        return
    assert well_formed, f"accepted args={args!r} flow_id={flow_id!r} key={idempotency_key!r}"
    assert created is not None and (flow_id is None or created == flow_id)
    snap = props.free.snapshot(created)
    assert snap.status == "pending" and snap.input == {"token": token}
    assert snap.idempotency_key == idempotency_key
    if idempotency_key is not None:  # the same key gives the same flow back
        assert props.free.start(args, idempotency_key=idempotency_key) == created
    db.client.flushdb()  # keep the database (and its digest) small


@given(flow_id=identifiers(valid_ids), call=st.sampled_from(
    ["status", "snapshot", "result", "cancel", "cancel_flow", "delete_flow", "retry_flow", "signal"]))
@example(flow_id="flow\ud800", call="status")
@example(flow_id=None, call="status")
@example(flow_id=b"flow_1", call="delete_flow")
@example(flow_id="x" * 129, call="cancel_flow")
@example(flow_id=["flow_1"], call="retry_flow")
@PROPERTY
def test_any_flow_id_is_checked_before_redis_is_touched(db: Any, flow_id: Any, call: str) -> None:
    calls = {
        "status": lambda: props.free.status(flow_id),
        "snapshot": lambda: props.free.snapshot(flow_id),
        "result": lambda: props.free.result(flow_id),
        "cancel": lambda: props.free.cancel(flow_id, "why"),
        "cancel_flow": lambda: cancel_flow(flow_id, crux=props.crux),
        "delete_flow": lambda: delete_flow(flow_id, crux=props.crux),
        "retry_flow": lambda: retry_flow(flow_id, crux=props.crux),
        "signal": lambda: props.free.signal(flow_id, "anything", None),
    }
    with unchanged(db, f"{call}({flow_id!r}) of a flow that does not exist"):
        result, error = only_crux_errors(calls[call])
    if _valid_id(flow_id):
        assert (call == "delete_flow" and result is False and error is None) or isinstance(error, FlowNotFound), \
            repr(error)
    else:
        assert isinstance(error, InvalidFlowId), repr(error)
        assert not isinstance(error, FlowNotRetryable)
