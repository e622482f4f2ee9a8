"""Flows on one worker, their durable children on another queue served by a worker that imports
only the action modules: the child still reports back (every worker of the app is an extension
host from ``Crux(app)`` on)."""

from __future__ import annotations

import pytest

from cruxcelery import FlowCompleted
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess


def test_a_flow_completes_with_a_durable_child_served_by_an_actions_only_worker(tmp_path):
    from tests import split_actions_app, split_flows_app

    split_flows_app.crux.flows.store.redis.flushdb()  # database 10 belongs to this test alone
    with subprocess_worker(tmp_path, app="tests.split_actions_app", queue=split_actions_app.ACTIONS_QUEUE,
                           concurrency=1) as actions, \
            subprocess_worker(tmp_path, app="tests.split_flows_app", queue=split_flows_app.FLOWS_QUEUE,
                              concurrency=1) as flows:
        flow_id = split_flows_app.doubling.start({"n": 20})
        result = split_flows_app.doubling.result(flow_id, timeout_s=30)
        assert result == FlowCompleted(flow_id=flow_id, output=41), (actions.log()[-2000:], flows.log()[-2000:])
    assert "tests.split_flows_app" not in actions.log()
