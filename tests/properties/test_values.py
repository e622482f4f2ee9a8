"""Step and flow return values, raised exceptions and ``scope.cancel`` reasons, handed over by user
code running on a real worker (in a thread: one per module): whatever they are, the flow ends
(``completed`` with the value as stored JSON, ``cancelled`` with a string reason, else ``failed``
with a clear error), never stays ``running``, and stays readable."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.properties import app as props
from tests.properties.helpers import (
    PROPERTY,
    SURROGATES,
    Deep,
    depth,
    hostile_values,
    json_text,
    mostly,
    only_crux_errors,
    realise,
    wait_terminal,
)

pytestmark = pytest.mark.usefixtures("props_worker")
_tokens = itertools.count()


def _run(mode: str, value: Any) -> Any:
    token = f"v{next(_tokens)}"
    props.VALUES[token] = (mode, value)
    try:
        flow_id, error = only_crux_errors(lambda: props.values.start({"token": token}))
        assert error is None and flow_id is not None
        wait_terminal(props.values, flow_id)
        snap, error = only_crux_errors(lambda: props.values.snapshot(flow_id))
        assert error is None and snap is not None, f"flow {flow_id} is unreadable: {error}"
        assert props.values.status(flow_id).status == snap.status
        return snap
    finally:
        del props.VALUES[token]


def _storable(value: Any) -> Any:
    """What the store keeps for ``value``, or ``None`` when it cannot keep it."""
    from cruxcelery.flows.codec import MAX_DEPTH

    raw = json_text(value)
    if raw is None:
        return None
    loaded = json.loads(raw)
    return None if depth(loaded) > MAX_DEPTH else (loaded,)


@given(mode=st.sampled_from(["step", "return", "raise", "cancel"]),
       value=mostly(hostile_values, st.one_of(st.none(), st.text(max_size=30), st.sampled_from(SURROGATES))))
@example(mode="step", value="half a pair: \ud800")  # issue 11: left the flow running for ever
@example(mode="return", value="\udfff")
@example(mode="step", value=Deep(250))  # readable by json, past pydantic's JSON recursion limit
@example(mode="return", value=Deep(600, kind="dict"))  # past pydantic's serialization depth
@example(mode="step", value=b"bytes")
@example(mode="return", value=float("nan"))
@example(mode="raise", value="a message with a lone \udc80")
@example(mode="raise", value=props.Unprintable())
@example(mode="cancel", value=b"bytes")  # issue 11: scope.cancel(b"...") left the flow running for ever
@example(mode="cancel", value=["a", "list"])  # made the flow unreadable
@example(mode="cancel", value={"a": 1})
@example(mode="cancel", value=3)
@example(mode="cancel", value=True)
@example(mode="cancel", value="lone \ud800")
@example(mode="cancel", value="a fine reason")
@PROPERTY
def test_what_user_code_hands_the_engine_ends_the_flow_readably(mode: str, value: Any) -> None:
    """A step's output, the handler's return value, a raised exception or a ``scope.cancel``
    reason: the flow ends ``completed`` with the value as stored JSON, ``cancelled`` with a string
    reason, or ``failed`` with a clear error; it never stays ``running`` and stays readable."""
    value = realise(value)
    snap = _run(mode, value)
    event(f"{mode}: {snap.status}")
    if mode == "raise":
        assert snap.status == "failed", f"{snap.status}: {snap.output!r}"
        assert snap.error is not None and snap.error.name in ("RuntimeError", "Unprintable")
    elif mode == "cancel":
        if value is None or (isinstance(value, str) and json_text(value) is not None):
            assert snap.status == "cancelled", f"{snap.status}: {snap.error}"
            assert snap.cancel_reason == value
        else:
            assert snap.status == "failed", f"{snap.status}: {snap.cancel_reason!r}"
            assert snap.error is not None and "cancel reason" in snap.error.message, snap.error.message
    elif (stored := _storable(value)) is None:
        assert snap.status == "failed", f"{snap.status}: {snap.error}"
        assert snap.error is not None
        assert "not JSON" in snap.error.message or "nested deeper" in snap.error.message, snap.error.message
    else:
        assert snap.status == "completed", f"{snap.status}: {snap.error}"
        assert snap.output == ({"step": stored[0]} if mode == "step" else stored[0])
