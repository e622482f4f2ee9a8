"""The reference app (tasks/ and flows/) end to end through a prefork worker, on Redis db 10."""

from __future__ import annotations

import importlib
import os
import sys
import time

import pytest
import redis

from cruxcelery.telemetry.records import validate_record
from cruxcelery.testing import read_jsonl
from tests.helpers import assert_segment_sequences
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess
REDIS = "redis://127.0.0.1:6379/10"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Import the reference app pointed at db 10 (leaving the environment as it was) and run its
    worker with a records file."""
    redis.Redis.from_url(REDIS).flushdb()
    saved = os.environ.get("CRUX_REDIS_URL")
    os.environ["CRUX_REDIS_URL"] = REDIS
    try:
        modules = {name: importlib.import_module(name) for name in ("tasks", "tasks.research", "tasks.agent",
                                                                     "flows.writer", "flows.digest")}
    finally:
        if saved is None:
            del os.environ["CRUX_REDIS_URL"]
        else:
            os.environ["CRUX_REDIS_URL"] = saved
    modules["tasks"].app.set_current()
    tmp = tmp_path_factory.mktemp("reference")
    records = tmp / "records.jsonl"
    env = {"CRUX_REDIS_URL": REDIS, "CRUX_RECORDS_FILE": str(records)}
    with subprocess_worker(tmp, app="tasks", queue="celery", env=env) as worker:
        yield modules, records, worker
    for name in list(sys.modules):
        if name == "tasks" or name.startswith(("tasks.", "flows.")):
            del sys.modules[name]


def _records(path, predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while not predicate(records := read_jsonl(str(path))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return records


def test_plan_research_shows_boundaries_errors_and_a_detached_follow_up(reference):
    modules, path, _ = reference
    assert modules["tasks.research"].plan.delay({"thread_id": "t1"}).get(timeout=30)["sources"] == 3
    records = _records(path, lambda rs: any(r["type"] == "edge" for r in rs)
                       and sum(r["type"] == "run:end" for r in rs) >= 2)
    for record in records:
        validate_record(record)
    assert_segment_sequences(records)
    failed = [r for r in records if r["type"] == "span:event" and r["name"].endswith("boundary.failed")]
    assert len(failed) == 1 and failed[0]["attributes"]["error"]["name"] == "LookupError"
    assert any(r["type"] == "artifact" and r["kind"] == "error.stack" for r in records)


def test_the_writer_flow_runs_end_to_end_with_its_approval(reference):
    modules, _, worker = reference
    writer = modules["flows.writer"].writer
    flow_id = writer.start({"draft_id": "ref-1", "brief": "Durable flows survive worker restarts"})
    deadline = time.monotonic() + 30
    while writer.status(flow_id).status != "suspended" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.status(flow_id).suspended_at == "approval", worker.log()[-2000:]
    writer.signal(flow_id, "approval", {"approved": True, "feedback": "shorter"})
    result = writer.result(flow_id, timeout_s=30)
    assert result is not None and result.status == "completed", worker.log()[-2000:]
    assert "## section on durable" in result.output["draft"] and "shorter" in result.output["draft"]


def test_the_digest_flow_waits_until_its_child_flows_complete(reference):
    modules, path, worker = reference
    digest = modules["flows.digest"].digest
    flow_id = digest.start({"sources": ["celery docs", "kombu docs", "redis docs"]})
    result = digest.result(flow_id, timeout_s=40)
    assert result is not None and result.status == "completed", worker.log()[-2000:]
    assert result.output == ["summary of celery docs", "summary of kombu docs", "summary of redis docs"]
    records = read_jsonl(str(path))
    parent_run = next(r for r in records if r["type"] == "run:start" and r["attributes"].get("flowId") == flow_id)
    children = [r for r in records if r["type"] == "run:start" and r.get("parentRunId") == parent_run["runId"]]
    assert len(children) == 3 and {c["operationId"] for c in children} == {parent_run["operationId"]}


def test_the_research_agent_plans_calls_tools_branches_and_hands_off_to_the_writer(reference):
    modules, path, worker = reference
    answer = modules["tasks.agent"].research_agent.delay({"draft_id": "agent-ref"}).get(timeout=30)
    writer = modules["flows.writer"].writer
    deadline = time.monotonic() + 30
    while writer.status(answer["flowId"]).status != "suspended" and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.signal(answer["flowId"], "approval", {"approved": True})
    result = writer.result(answer["flowId"], timeout_s=30)
    assert result is not None and result.status == "completed", worker.log()[-2000:]

    def done(rs):
        return any(r["type"] == "span" and r.get("toolName") == "ask_user" for r in rs) and any(
            r["type"] == "span:start" and r.get("toolName") == "fetch_source" for r in rs)

    records = _records(path, done)
    for record in records:
        validate_record(record)
    run_id = next(r["runId"] for r in records if r["type"] == "run:start" and r["name"] == "research agent")
    mine = [r for r in records if r["runId"] == run_id]
    spans = {r["name"]: r for r in mine if r["type"] in ("span:start", "span")}
    assert spans["plan research"]["primitive"] == "generation.call" and spans["plan research"]["model"]
    assert spans["outline draft"]["primitive"] == "generation.stream"
    tools = {r["toolName"]: r for r in mine if r["type"] in ("span:start", "span") and r["primitive"] == "tool.call"}
    assert set(tools) == {"search_notes", "fetch_source", "ask_user"}
    assert tools["ask_user"]["attributes"]["executed"] is False
    branches = [r for r in mine if r.get("primitive") == "composition.branch"]
    assert {b["parentSpanId"] for b in branches} == {spans["draft in parallel"]["spanId"]} and len(branches) == 2
    writer_run = next(r for r in records if r["type"] == "run:start" and r.get("parentRunId") == run_id)
    assert writer_run["rootPrimitive"] == "flow.run"
