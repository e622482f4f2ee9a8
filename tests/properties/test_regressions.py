"""One plain test per defect of issue 11's first paragraph (the properties find them too: their
explicit examples carry the same cases). The tests that need a worker come last: the worker's
sweeper writes to Redis, so every "nothing written" check runs before it starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from cruxcelery import cancel_flow, list_flows, signal_flow
from cruxcelery.errors import CruxError, InvalidArgs
from cruxcelery.flows.errors import FlowError, InvalidCursor, InvalidFlowId, SignalRejected
from cruxcelery.flows.handle import FLOW_TASK_PREFIX
from tests.properties import app as props
from tests.properties.helpers import nested, unchanged, wait_terminal


@pytest.fixture(scope="module", autouse=True)
def _fresh(db: Any) -> Iterator[None]:
    db.client.flushdb()
    yield
    db.client.flushdb()


@pytest.fixture()
def pending(db: Any) -> str:
    flow_id = props.free.start({"token": "regression"})
    db.client.delete(props.QUEUE)  # no worker yet
    return flow_id


@pytest.mark.parametrize("reason", [["a", "list"], {"a": "dict"}, 42, 1.5, True, b"bytes", "lone \ud800"])
def test_a_cancel_reason_that_is_not_a_string_is_a_typed_error_and_writes_nothing(
        db: Any, pending: str, reason: Any) -> None:
    """240 of 341 such reasons were accepted and made the flow unreadable for good."""
    with unchanged(db, "a refused cancel"), pytest.raises(FlowError, match="cancel reason"):
        cancel_flow(pending, reason, crux=props.crux)
    assert props.free.status(pending).status == "pending"
    assert cancel_flow(pending, "a string is fine", crux=props.crux).status == "cancelled"
    assert props.free.snapshot(pending).cancel_reason == "a string is fine"


@pytest.mark.parametrize("payload", [nested(5000), nested(150), {"text": "lone \ud800"}, "x" * 16_000_000,
                                     {"n": float("nan")}, {b"bytes": 1}])
def test_a_deep_lone_surrogate_huge_or_non_json_signal_payload_is_refused_and_writes_nothing(
        db: Any, pending: str, payload: Any) -> None:
    """Escaped as RecursionError / UnicodeEncodeError; 16 MB was accepted (no size cap)."""
    with unchanged(db, "a refused signal"), pytest.raises(SignalRejected):
        signal_flow(pending, "anything", payload, crux=props.crux)
    assert props.free.status(pending).status == "pending"


def test_the_signal_size_cap_is_crux_signal_max_bytes(db: Any, pending: str) -> None:
    fits = "x" * (props.SIGNAL_MAX_BYTES - 2)  # its JSON is the cap exactly
    signal_flow(pending, "anything", fits, crux=props.crux)
    with unchanged(db, "a signal one byte over the cap"), pytest.raises(SignalRejected, match="CRUX_SIGNAL_MAX_BYTES"):
        signal_flow(pending, "anything", fits + "x", crux=props.crux)


@pytest.mark.parametrize("key", ["has spaces", "k" * 129, "", "key\ud800", 42, b"key", ["k"]])
def test_a_malformed_idempotency_key_is_a_typed_error_not_a_pydantic_one(db: Any, key: Any) -> None:
    with unchanged(db, "a refused start"), pytest.raises(InvalidFlowId) as refused:
        props.free.start({"token": "t"}, idempotency_key=key)
    assert not isinstance(refused.value, ValidationError)


def test_a_start_whose_input_cannot_be_stored_claims_no_idempotency_key(db: Any) -> None:
    with unchanged(db, "a start with a lone surrogate in its input"), pytest.raises(FlowError, match="not JSON"):
        props.free.start({"token": "lone \ud800"}, idempotency_key="claimed-first")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"limit": 0}, InvalidArgs), ({"limit": 1001}, InvalidArgs), ({"limit": "5"}, InvalidArgs),
    ({"limit": 2.5}, InvalidArgs), ({"limit": True}, InvalidArgs), ({"status": "done"}, InvalidArgs),
    ({"status": ["pending"]}, InvalidArgs), ({"cursor": "not-a-cursor"}, InvalidCursor),
    ({"cursor": 12}, InvalidCursor), ({"name": "a:b"}, InvalidFlowId),
])
def test_bad_list_flows_arguments_are_typed_errors(db: Any, kwargs: dict[str, Any], error: type[CruxError]) -> None:
    """``list_flows`` raised plain ValueError / TypeError (and a float limit reached Redis)."""
    with unchanged(db, "list_flows"), pytest.raises(error):
        list_flows(crux=props.crux, **kwargs)


# -- with a worker from here on --------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "value", "message"), [
    ("step", "half a pair: \ud800", "not JSON"), ("return", "\udfff", "not JSON"),
    ("cancel", b"bytes", "cancel reason"), ("cancel", ["a"], "cancel reason"), ("cancel", "x\ud800", "cancel reason"),
    ("step", nested(250), "nested deeper"), ("return", nested(600, kind="dict"), "nested deeper"),
    ("raise", "a message with a lone \udc80", "\\udc80"), ("raise", props.Unprintable(), "str() failed"),
])
def test_a_value_the_store_cannot_keep_fails_the_flow_instead_of_leaving_it_running(
        props_worker: Any, mode: str, value: Any, message: str) -> None:
    """A lone surrogate from a step, or ``scope.cancel(b"...")``, left the flow ``running`` for ever."""
    token = f"regression-{mode}-{time.monotonic_ns()}"
    props.VALUES[token] = (mode, value)
    flow_id = props.values.start({"token": token})
    summary = wait_terminal(props.values, flow_id)
    snap = props.values.snapshot(flow_id)
    assert summary.status == "failed" and snap.error is not None and message in snap.error.message, snap.error
    del props.VALUES[token]


@pytest.mark.parametrize("flow_id", ["flow_never_started", "x", "a:b.c-d_e"])
def test_a_flow_task_for_an_unknown_flow_leaves_no_lease_behind(db: Any, props_worker: Any, flow_id: str) -> None:
    keys = props.crux.flows.store.keys
    result = props.app.send_task(f"{FLOW_TASK_PREFIX}p-values", kwargs={"flow_id": flow_id, "reason": "start"})
    assert result.get(timeout=10)["outcome"] == "unknown"
    assert db.client.exists(keys.lease(flow_id), keys.flow(flow_id), keys.wake(flow_id)) == 0
    assert db.client.zscore(keys.leases(), flow_id) is None
