"""Flower tells the truth: a real Flower process and a real prefork worker (task events on) on
Redis database 5. Actions appear under their observability names, flow tasks as ``flow · phase``
linked to the flow's first task, a failed flow as FAILURE with the user's traceback, and no secret
in any field while the worker received the real one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.flower_server import flower_server, get_json
from tests.workers import subprocess_worker

REDIS = "redis://127.0.0.1:6379/5"
SECRET = "sk-live-Flower-Secret-4711"
TOKEN = "tok-session-Flower-0815"
FLOW_SECRETS = ("sk-flow-secret-000", "tok-flow-000")

pytest.importorskip("flower")


def _poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {json.dumps(value, default=str)[:3000]}")
        time.sleep(0.2)


def test_flower_shows_readable_names_failures_and_no_secrets(tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    from cruxcelery.flows.manager import first_task_id
    from tests import flower_app

    with subprocess_worker(tmp_path, app="tests.flower_app", extra_args=("-E",)) as worker, \
            flower_server(tmp_path, "tests.flower_app", worker.queue) as base:
        flower_app.app.conf.task_default_queue = worker.queue

        def tasks() -> dict[str, Any]:
            return get_json(f"{base}/api/tasks")  # type: ignore[no-any-return]

        # Flower subscribes to events in the background: publish until it sees one
        deadline = time.monotonic() + 30
        while not any(t.get("name") == "Use the credentials" for t in tasks().values()):
            assert time.monotonic() < deadline, "flower never saw a task event"
            flower_app.use_credentials.delay({"user": "warm-up", "credential": SECRET, "session_token": TOKEN})
            time.sleep(1.0)

        result = flower_app.use_credentials.delay({"user": "ann", "credential": SECRET, "session_token": TOKEN,
                                                   "note": "x" * 500})
        assert result.get(timeout=30) == {"user": "ann"}
        doomed_id = flower_app.doomed.start({"job": "j1"})
        waiting_id = flower_app.waiting.start({"job": "j2"})
        _poll(lambda: flower_app.waiting.status(waiting_id).status, lambda s: s == "suspended", 30, "suspended")
        flower_app.waiting.signal(waiting_id, "go", {"go": True})
        assert flower_app.waiting.result(waiting_id, timeout_s=30).status == "completed"  # type: ignore[union-attr]
        assert flower_app.doomed.result(doomed_id, timeout_s=30).status == "failed"  # type: ignore[union-attr]

        # the worker received the real values, the SecretStr rebuilt
        seen = json.loads(client.get(f"{flower_app.SEEN_KEY}:ann") or b"{}")
        assert seen["credential"] == SECRET and seen["credential_type"] == "SecretStr"
        assert seen["session_token"] == TOKEN
        in_flow = json.loads(client.get(f"{flower_app.SEEN_KEY}:flow") or b"{}")
        assert (in_flow["credential"], in_flow["session_token"]) == FLOW_SECRETS

        doomed_first, waiting_first = first_task_id(doomed_id), first_task_id(waiting_id)

        def complete(found: dict[str, Any]) -> bool:
            names = {(t.get("name"), t.get("state")) for t in found.values()}
            return (("fl-doomed · start", "FAILURE") in names and ("fl-waiting · signal", "SUCCESS") in names
                    and ("fl-waiting · child", "SUCCESS") in names and result.id in found
                    and found[result.id].get("state") == "SUCCESS")

        found = _poll(tasks, complete, 45, "the tasks in flower")

        mine = found[result.id]
        assert mine["name"] == "Use the credentials"
        assert "'user': 'ann'" in mine["kwargs"] and "crux.run_id" not in mine["kwargs"]  # a root run
        assert "…" in mine["kwargs"], "a long value is summarised"

        failed = found[doomed_first]
        assert failed["name"] == "fl-doomed · start" and failed["state"] == "FAILURE"
        assert "FlowTaskFailed" in failed["exception"] and "the user's bug in j1" in failed["exception"]
        assert "explode_in_user_code" in failed["traceback"], "the user's traceback is carried"
        assert doomed_id in failed["kwargs"]

        flow_tasks = [t for t in found.values() if str(t.get("name", "")).startswith("fl-waiting · ")]
        assert found[waiting_first]["name"] == "fl-waiting · start"
        for task in flow_tasks:
            if task["uuid"] != waiting_first:
                assert task["root_id"] == waiting_first and task["parent_id"] == waiting_first, task
        child = next(t for t in found.values() if t.get("name") == "Use the credentials"
                     and "'user': 'flow'" in str(t.get("kwargs")))
        assert child["root_id"] == waiting_first, "the flow's child is linked to its first task"
        assert "crux.run_id" in child["kwargs"] and "crux.flow_id" in child["kwargs"]

        everything = json.dumps(found)
        for secret in (SECRET, TOKEN, *FLOW_SECRETS):
            assert secret not in everything, f"{secret} shows in flower"
        assert "**********" in everything and "[REDACTED]" in everything

        _poll(worker.log, lambda text: "ERROR" in text and "explode_in_user_code" in text, 10, "the error log")
    client.flushdb()
