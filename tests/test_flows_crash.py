"""Crash safety and timers with real subprocess prefork workers (visibility timeout 5 s)."""

from __future__ import annotations

import time

import pytest

from cruxcelery import FlowCompleted, FlowExpiredResult
from tests.flowhelpers import wait_status
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess


@pytest.fixture()
def crash_app():
    from tests import crash_app

    crash_app.counters.redis.flushdb()  # database 11 belongs to these tests alone
    return crash_app


def _worker(tmp_path, crash_app, concurrency=1):
    return subprocess_worker(tmp_path, app="tests.crash_app", queue=crash_app.QUEUE, concurrency=concurrency)


def _wait_count(crash_app, key, what, n, worker, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while crash_app.counters.count(key, what) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert crash_app.counters.count(key, what) == n, worker.log()[-3000:]


def _wait(crash_app, flow_id, status, worker, timeout_s=15.0):
    try:
        return wait_status(crash_app.timed, flow_id, status, timeout_s=timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None


def test_a_worker_killed_during_a_step_is_followed_by_a_restart_that_completes_the_flow(tmp_path, crash_app):
    flow_id = crash_app.crashy.start({"sleep_s": 60})
    with _worker(tmp_path, crash_app) as worker:
        deadline = time.monotonic() + 20
        while crash_app.counters.count(flow_id, "second") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert crash_app.counters.count(flow_id, "second") == 1, worker.log()[-2000:]
        worker.kill()
    with _worker(tmp_path, crash_app) as worker:
        result = crash_app.crashy.result(flow_id, timeout_s=60)
        assert result == FlowCompleted(flow_id=flow_id, output={"first": 1, "second": 2}), worker.log()[-3000:]
    assert crash_app.counters.count(flow_id, "first") == 1, "a recorded step never runs again"


def test_a_timeout_longer_than_the_visibility_timeout_fires_exactly_once(tmp_path, crash_app):
    with _worker(tmp_path, crash_app) as worker:
        flow_id = crash_app.timed.start({"timeout_s": 12})
        _wait(crash_app, flow_id, "suspended", worker)
        _wait(crash_app, flow_id, "expired", worker, timeout_s=40)
        time.sleep(6)  # any redelivered wake-up or duplicate timer would fire by now
        assert crash_app.timed.result(flow_id) == FlowExpiredResult(flow_id=flow_id, suspended_at="never")
        assert crash_app.counters.count(flow_id, "expired") == 1, worker.log()[-3000:]


def test_a_timer_whose_wake_up_message_was_deleted_is_recovered_by_the_sweep(tmp_path, crash_app):
    with _worker(tmp_path, crash_app) as worker:
        flow_id = crash_app.timed.start({"timeout_s": 4})
        _wait(crash_app, flow_id, "suspended", worker)
        worker.kill()
    # the wake-up sat unacked in the killed worker; delete it (and anything queued)
    crash_app.counters.redis.delete("unacked", "unacked_index", crash_app.QUEUE)
    with _worker(tmp_path, crash_app) as worker:
        _wait(crash_app, flow_id, "expired", worker, timeout_s=30)
        assert crash_app.counters.count(flow_id, "expired") == 1, worker.log()[-3000:]


def test_a_run_after_longer_than_the_visibility_timeout_arrives_once_on_time(tmp_path, crash_app):
    from celery.result import AsyncResult

    with _worker(tmp_path, crash_app) as worker:
        scheduled = crash_app.schedule_later.delay({"key": "later-1", "delay_s": 7}).get(timeout=20)
        ran_at = AsyncResult(scheduled["taskId"], app=crash_app.app).get(timeout=30)
        time.sleep(6)  # a redelivered or duplicated hop would run the target again by now
        assert crash_app.counters.count("later-1", "later") == 1, worker.log()[-3000:]
    assert 6.5 <= ran_at - scheduled["scheduledAt"] <= 12
    assert not list(crash_app.counters.redis.scan_iter("crux-c:deferred:*")), "published, then forgotten"


def test_a_durable_child_delivered_again_while_it_runs_runs_once(tmp_path, crash_app):
    flow_id = crash_app.with_child.start({"sleep_s": 4})
    with _worker(tmp_path, crash_app, concurrency=2) as worker:
        _wait_count(crash_app, flow_id, "child", 1, worker)
        task_id = crash_app.with_child.snapshot(flow_id).child_tasks["child.1"]
        message = crash_app.crux.flows.store.claims.all()[task_id]["message"]
        crash_app.app.send_task(message["name"], args=message["args"], kwargs=message["kwargs"], task_id=task_id,
                                headers={"crux": message["envelope"]}, queue=crash_app.QUEUE)

        result = crash_app.with_child.result(flow_id, timeout_s=30)
        time.sleep(1)  # a duplicate that ran would have counted by now

    assert result.output == {"runs": 1}, worker.log()[-3000:]
    assert crash_app.counters.count(flow_id, "child") == 1


def test_a_durable_child_whose_worker_was_killed_never_runs_again_once_its_outcome_is_stored(tmp_path, crash_app):
    """The sweeper re-publishes the killed worker's child; kombu restores the original message
    after the visibility timeout, when the child's outcome is stored: it does not run."""
    flow_id = crash_app.with_child.start({"sleep_s": 60})
    with _worker(tmp_path, crash_app) as worker:
        _wait_count(crash_app, flow_id, "child", 1, worker)
        worker.kill()
    with _worker(tmp_path, crash_app) as worker:
        result = crash_app.with_child.result(flow_id, timeout_s=60)
        time.sleep(crash_app.VISIBILITY_S + 6)  # kombu restored the killed worker's message by now

        assert result.output == {"runs": 2}, worker.log()[-3000:]
        assert crash_app.counters.count(flow_id, "child") == 2, worker.log()[-3000:]
