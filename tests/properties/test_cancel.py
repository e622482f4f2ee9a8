"""``cancel_flow`` reasons: anything a caller may pass. A reason that is not a string (or one JSON
cannot carry) is a typed error and writes nothing; any other cancels the flow, which stays
readable with that reason (on a finished flow: a no-op that writes nothing). Issue 11: lists,
dicts, numbers and booleans were accepted and made the flow unreadable for good."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from cruxcelery import cancel_flow, delete_flow
from cruxcelery.flows.errors import FlowError
from tests.properties import app as props
from tests.properties.helpers import (
    PROPERTY,
    SURROGATES,
    hostile_text,
    hostile_values,
    json_text,
    mostly,
    only_crux_errors,
    realise,
)

PENDING: list[str] = []
FINISHED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _flows(db: Any) -> Iterator[None]:
    db.client.flushdb()
    FINISHED.append(props.free.start({"token": "done"}))
    cancel_flow(FINISHED[0], "done already", crux=props.crux)
    yield
    db.client.flushdb()


def _pending(db: Any) -> str:
    """A pending flow to cancel (a new one once the last was cancelled)."""
    if not PENDING:
        PENDING.append(props.free.start({"token": "to cancel"}))
        db.client.delete(props.QUEUE)  # no worker here
    return PENDING[-1]


@given(reason=mostly(st.one_of(st.none(), hostile_text), st.one_of(hostile_values, st.sampled_from(SURROGATES)), 2),
       finished=st.integers(0, 4).map(lambda n: n == 0), via=st.sampled_from(["cancel_flow", "handle"]))
@example(reason=["a", "list"], finished=False, via="cancel_flow")  # issue 11: made the flow unreadable
@example(reason={"a": "dict"}, finished=False, via="cancel_flow")
@example(reason=42, finished=False, via="handle")
@example(reason=True, finished=False, via="cancel_flow")
@example(reason=b"bytes", finished=False, via="cancel_flow")
@example(reason="lone \ud800", finished=False, via="cancel_flow")
@example(reason=float("nan"), finished=True, via="cancel_flow")
@PROPERTY
def test_a_cancel_reason_cancels_a_readable_flow_or_is_refused_with_nothing_written(
        db: Any, reason: Any, finished: bool, via: str) -> None:
    reason = realise(reason)
    flow_id = FINISHED[0] if finished else _pending(db)
    fine = reason is None or (isinstance(reason, str) and json_text(reason) is not None)
    cancel = (lambda: cancel_flow(flow_id, reason, crux=props.crux)) if via == "cancel_flow" else (
        lambda: props.free.cancel(flow_id, reason))
    before = db.digest()
    summary, error = only_crux_errors(cancel)
    event("cancelled" if error is None else "refused")
    if not fine:
        assert isinstance(error, FlowError) and "cancel reason" in str(error), repr(error)
        assert db.digest() == before, f"a refused cancel wrote to Redis: {error}"
    else:
        assert error is None, repr(error)
        assert summary is not None and summary.status == "cancelled"
    snap, unreadable = only_crux_errors(lambda: props.free.snapshot(flow_id))
    assert unreadable is None and snap is not None, f"flow {flow_id} became unreadable: {unreadable}"
    assert snap.status == "cancelled" if fine else snap.status in ("pending", "cancelled")
    if fine and not finished:
        assert snap.cancel_reason == reason
        PENDING.clear()
        assert delete_flow(flow_id, crux=props.crux)  # keep the database (and its digest) small
    if finished:  # cancelling a finished flow is a no-op, whatever the reason
        assert snap.cancel_reason == "done already"
        assert db.digest() == before, "cancelling a cancelled flow wrote to Redis"
