"""How a durable child's end reaches its flow through the extension seam (docs/architecture.md, the
extension seam), with real subprocess prefork workers: a child killed by its hard time limit fails
its step, a retry keeps the child's claim, and a child's error is stored redacted."""

from __future__ import annotations

import time

import pytest

from cruxcelery import FlowCompleted, FlowFailed
from cruxcelery.testing import read_jsonl
from tests.flowhelpers import wait_status
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess


@pytest.fixture()
def seam_app():
    from tests import seam_app

    client = seam_app.redis_client()
    client.flushdb()  # database 1 belongs to these tests alone
    yield seam_app
    client.flushdb()


def _worker(tmp_path, seam_app, **env):
    return subprocess_worker(tmp_path, app="tests.seam_app", queue=seam_app.QUEUE, concurrency=1,
                             env={k: str(v) for k, v in env.items()})


def _everything_stored_under(client, prefix):
    """The text of every key (and its values) under ``prefix``, whatever its type."""
    texts = []
    for key in client.scan_iter(f"{prefix}*"):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = list(client.zrange(key, 0, -1))
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, fields in client.xrange(key) for pair in fields.items() for v in pair]
        else:
            values = []
        texts.append(key.decode(errors="replace"))
        texts.extend(v.decode(errors="replace") for v in values if v is not None)
    return "\n".join(texts)


def test_a_durable_child_killed_by_its_hard_time_limit_fails_its_step(tmp_path, seam_app):
    with _worker(tmp_path, seam_app) as worker:
        flow_id = seam_app.time_limited.start({})

        result = seam_app.time_limited.result(flow_id, timeout_s=60)

        # not a success with output None: the child failed, so its step (without a fallback) and the flow fail
        assert isinstance(result, FlowFailed), f"{result!r}\n--- worker log ---\n{worker.log()[-4000:]}"
        assert result.error is not None and "TimeLimitExceeded" in result.error.message, result


def test_a_durable_child_waiting_for_its_retry_keeps_its_claim_and_survives_a_kill(tmp_path, seam_app):
    store = seam_app.crux.flows.store
    with _worker(tmp_path, seam_app) as worker:
        flow_id = seam_app.retried.start({})
        wait_status(seam_app.retried, flow_id, "waiting", timeout_s=30)
        child_id = seam_app.retried.snapshot(flow_id).waiting.child_task_id
        deadline = time.monotonic() + 30
        while seam_app.closed(child_id) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seam_app.closed(child_id) == 1, f"the first attempt never closed\n{worker.log()[-4000:]}"
        assert seam_app.received(child_id) == 2, "the retry's message was received before the close"

        assert child_id in store.claims.all(), "the retry's claim was dropped by the attempt that retried"

        worker.kill()  # during the retry's countdown: the broker holds its message for an hour
    with _worker(tmp_path, seam_app) as worker:
        result = seam_app.retried.result(flow_id, timeout_s=40)
        assert result == FlowCompleted(flow_id=flow_id, output={"executions": 2}), worker.log()[-4000:]


def test_a_durable_childs_error_never_stores_nor_records_the_secrets_of_its_args(tmp_path, seam_app):
    records_file = tmp_path / "records.jsonl"
    with _worker(tmp_path, seam_app, CRUX_RECORDS_FILE=records_file) as worker:
        flow_id = seam_app.vault_flow.start({})
        result = seam_app.vault_flow.result(flow_id, timeout_s=60)
        assert isinstance(result, FlowFailed), f"{result!r}\n{worker.log()[-4000:]}"
        worker.warm_shutdown()  # every record is written by now

    assert result.error is not None and "the vault refused token" in result.error.message, result
    assert seam_app.SECRET not in result.error.message
    stored = _everything_stored_under(seam_app.redis_client(), seam_app.PREFIX)
    assert flow_id in stored and "the vault refused token" in stored, "the flow's keys were read"
    assert seam_app.SECRET not in stored
    records = records_file.read_text()
    assert read_jsonl(str(records_file)) and "the vault refused token" in records
    assert seam_app.SECRET not in records
