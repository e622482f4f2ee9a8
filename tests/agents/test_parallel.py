"""``ctx.crux.parallel``: branches in threads that keep the action's run and trace, each a child
span of the composition span; results returned, failures collected with evidence."""

from __future__ import annotations

import time

import pytest

from cruxcelery.telemetry.records import validate_record
from cruxcelery.testing import read_jsonl
from tests.agents.helpers import artifacts, end_of, one, settled, starts
from tests.helpers import assert_segment_sequences
from tests.workers import subprocess_worker


def _assert_branches_nest(found):
    composition = one(starts(found, "composition.parallel"))
    branches = {b["name"]: b for b in starts(found, "composition.branch")}
    assert set(branches) == {"a", "b"}
    assert {b["parentSpanId"] for b in branches.values()} == {composition["spanId"]}
    assert composition["attributes"]["kind"] == "parallel" and composition["attributes"]["childCount"] == 2
    for name, branch in branches.items():  # each branch's work hangs under its own branch span
        nested = [s for s in found if s["type"] == "span:start" and s.get("parentSpanId") == branch["spanId"]]
        assert {s["primitive"] for s in nested} == {"generation.call", "tool.call"}, name
    assert len({(r["runId"], r["traceId"]) for r in found}) == 1
    return composition, branches


def test_branches_nest_under_the_composition_span_in_the_actions_run(records, agents_app):
    result = agents_app.fan_out.delay({"topic": "t"}).get(timeout=15)
    assert result == {"a": ["t-a-1", "t-a-2"], "b": ["t-b-1", "t-b-2"]}
    found = settled(records)
    composition, _ = _assert_branches_nest(found)
    report = one(artifacts(found, composition["spanId"], "composition.report"))["preview"]
    assert report["status"] == "success" and [b["id"] for b in report["branches"]] == ["a", "b"]
    assert end_of(found, composition["spanId"])["status"] == "ok"


def test_a_failing_branch_is_collected_with_evidence_while_the_others_finish(records, agents_app):
    result = agents_app.fan_out.delay({"mode": "fail", "topic": "t"}).get(timeout=15)
    assert result["a"] == ["t-a-1", "t-a-2"] and result["b"].startswith("KeyError")
    found = settled(records)
    branch = next(b for b in starts(found, "composition.branch") if b["name"] == "b")
    end = end_of(found, branch["spanId"])
    assert end["status"] == "error" and end["error"]["name"] == "KeyError"
    assert {a["kind"] for a in artifacts(found, branch["spanId"])} == {"error.stack", "error.raw"}
    report = one(artifacts(found, one(starts(found, "composition.parallel"))["spanId"], "composition.report"))
    assert [(b["id"], b["status"]) for b in report["preview"]["branches"]] == [("a", "success"), ("b", "error")]


def test_without_return_exceptions_parallel_raises_after_every_branch_ran(records, agents_app):
    with pytest.raises(Exception) as raised:
        agents_app.fan_out.delay({"mode": "raise", "topic": "t"}).get(timeout=15)
    assert "ParallelError" in type(raised.value).__name__ or "branch c has no source" in str(raised.value)
    found = settled(records)
    composition = one(starts(found, "composition.parallel"))
    assert end_of(found, composition["spanId"])["error"]["name"] == "ParallelError"
    assert sum(1 for b in starts(found, "tool.call")) == 2, "branches a and b still ran to the end"


@pytest.mark.subprocess
def test_branches_keep_the_run_and_trace_in_a_prefork_worker(tmp_path, agents_app):
    records_file = tmp_path / "records.jsonl"
    with subprocess_worker(tmp_path, app="tests.agents.app", env={"CRUX_RECORDS_FILE": str(records_file)}) as worker:
        result = agents_app.fan_out.apply_async(({"topic": "pf"},), queue=worker.queue).get(timeout=30)
        assert result == {"a": ["pf-a-1", "pf-a-2"], "b": ["pf-b-1", "pf-b-2"]}
        deadline = time.monotonic() + 20
        while not any(r["type"] == "run:end" for r in read_jsonl(str(records_file))) and time.monotonic() < deadline:
            time.sleep(0.1)
    found = read_jsonl(str(records_file))
    for record in found:
        validate_record(record)
    assert_segment_sequences(found)
    _assert_branches_nest(found)
