"""Only the child a flow recorded for a step reports into it. A task whose envelope names the
flow and the step (a plain task, a crux action carrying a copy of the child's envelope) is ignored
with a warning; the recorded child's outcome becomes the step's output, also when the child ends
before its flow saved ``waiting``."""

from __future__ import annotations

import logging

import pytest

from cruxcelery.core.envelope import Envelope, EnvelopeCodec
from cruxcelery.telemetry import ids
from tests.app import crux, leaf, plain_add
from tests.app_flows import parked_child
from tests.flowhelpers import wait_status
from tests.parking import parking


@pytest.fixture()
def lot(celery_test_app, worker):
    with parking(celery_test_app) as lot:
        yield lot


@pytest.fixture()
def signing(celery_test_app):
    original = crux.codec
    crux.codec = EnvelopeCodec(original.max_bytes, b"test-signing-key")
    yield crux.codec
    crux.codec = original


def _waiting_on_parked_child(lot):
    flow_id = parked_child.start({"label": lot.queue})
    wait_status(parked_child, flow_id, "waiting")
    return flow_id, parked_child.snapshot(flow_id).waiting.child_key


def _envelope_naming(flow_id: str, step_key: str) -> Envelope:
    run = ids.run_id()
    return Envelope(kind="continuation", operation_id=run, run_id=run, trace_id=ids.trace_id(),
                    parent_span_id=ids.span_id(), segment_id=ids.segment_id(), flow_id=flow_id,
                    flow_step=step_key)


def test_a_plain_task_whose_envelope_names_the_step_does_not_plant_its_result(lot, caplog):
    flow_id, step_key = _waiting_on_parked_child(lot)
    header = crux.codec.encode(_envelope_naming(flow_id, step_key))

    with caplog.at_level(logging.WARNING, logger="cruxcelery.flows"):
        assert plain_add.apply_async((1, 2), headers={"crux": header}).get(timeout=10) == 3
        lot.release()
        result = parked_child.result(flow_id, timeout_s=20)

    assert result.output["topic"] == "legit"
    assert "not the child it recorded" in caplog.text


def test_an_action_carrying_a_copy_of_the_childs_envelope_does_not_plant_its_result(lot):
    flow_id, _ = _waiting_on_parked_child(lot)
    copied = lot.header("crux")

    leaf.apply_async(({"topic": "forged"},), headers={"crux": copied}).get(timeout=10)
    lot.release()

    assert parked_child.result(flow_id, timeout_s=20).output["topic"] == "legit"


def test_a_child_that_ends_before_its_flow_saved_waiting_completes_the_step(lot):
    """What a crash between publishing the child and saving ``waiting`` leaves: the flow is still
    ``running`` with no wait recorded when the child ends. Its re-run step takes the child's stored
    outcome, without publishing the child again."""
    flow_id, _ = _waiting_on_parked_child(lot)
    store = crux.flows.store
    snap = store.snapshots.require(flow_id)
    crash_window = snap.model_copy(update={"status": "running", "waiting": None, "suspended_at": None})
    store.snapshots.save(crash_window, snap.version, snap.status)

    assert lot.release() == 1

    assert parked_child.result(flow_id, timeout_s=20).output["topic"] == "legit"
    assert lot.messages() == []


def test_a_durable_child_completes_its_flow_when_envelopes_are_signed(lot, signing):
    flow_id, _ = _waiting_on_parked_child(lot)

    lot.release()

    assert parked_child.result(flow_id, timeout_s=20).output["topic"] == "legit"
