"""A durable child runs once per step attempt, however often its message is delivered: a delivery
after the child's outcome is stored is acknowledged without running, and so is the second
publish of a step replayed after a crash between publishing its child and saving ``waiting``. A
plain Celery task's body cannot be skipped from outside it: a refused delivery runs, reporting
nothing."""

from __future__ import annotations

import logging

import redis

from tests.app import REDIS, crux, plain_add
from tests.app_flows import count, parked_counted, parked_plain
from tests.flowhelpers import wait_status
from tests.parking import parking


def _drain(celery_test_app) -> None:
    """Wait until the in-thread worker handled what is queued before now (it runs in order)."""
    assert plain_add.apply_async((1, 2)).get(timeout=20) == 3


def test_a_child_delivered_again_after_its_outcome_was_stored_does_not_run_again(celery_test_app, worker):
    broker = redis.Redis.from_url(REDIS)
    with parking(celery_test_app) as lot:
        flow_id = parked_counted.start({"label": lot.queue})
        wait_status(parked_counted, flow_id, "waiting")
        [message] = broker.lrange(lot.queue, 0, -1)
        lot.release()
        assert parked_counted.result(flow_id, timeout_s=20).output["runs"] == 1

        broker.lpush(celery_test_app.QUEUE, message)  # the same message again (kombu restoring it, ...)
        _drain(celery_test_app)

    assert count(flow_id, "counted") == 1


def test_a_child_published_again_by_a_step_replayed_after_a_crash_runs_once(celery_test_app, worker):
    """A crash between publishing the child and saving ``waiting`` leaves a ``running`` flow whose
    recovery re-runs the step: it publishes the recorded child id again."""
    with parking(celery_test_app) as lot:
        flow_id = parked_counted.start({"label": lot.queue})
        wait_status(parked_counted, flow_id, "waiting")
        store = crux.flows.store
        snap = store.snapshots.require(flow_id)
        crash_window = snap.model_copy(update={"status": "running", "waiting": None, "suspended_at": None})
        store.snapshots.save(crash_window, snap.version, snap.status)
        crux.flows.resume(flow_id, "recover")
        wait_status(parked_counted, flow_id, "waiting")
        assert {m["headers"]["id"] for m in lot.messages()} == {snap.child_tasks["child.1"]}
        assert len(lot.messages()) == 2

        lot.release()
        assert parked_counted.result(flow_id, timeout_s=20).output["runs"] == 1
        _drain(celery_test_app)

    assert count(flow_id, "counted") == 1


def test_a_plain_task_child_delivered_again_runs_with_a_warning_and_its_step_keeps_the_first_outcome(
        celery_test_app, worker, caplog):
    broker = redis.Redis.from_url(REDIS)
    with parking(celery_test_app) as lot:
        flow_id = parked_plain.start({"label": lot.queue})
        wait_status(parked_plain, flow_id, "waiting")
        [message] = broker.lrange(lot.queue, 0, -1)
        lot.release()
        assert parked_plain.result(flow_id, timeout_s=20).output == 1

        with caplog.at_level(logging.WARNING, logger="cruxcelery.hooks"):
            broker.lpush(celery_test_app.QUEUE, message)
            _drain(celery_test_app)

    assert count(flow_id, "plain") == 2
    assert "body cannot be skipped" in caplog.text
    assert parked_plain.result(flow_id).output == 1
