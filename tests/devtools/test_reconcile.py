"""Reconciliation: one test per rule (Crux's order, as the README's Devtools section lists it). Each reads the run at a
chosen instant through the service, and checks that the raw records are unchanged."""

from __future__ import annotations

import json
from typing import Any

from cruxcelery.devtools.batch import split_batch
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.models import RunDetailOut, SpanOut
from cruxcelery.devtools.store import DevtoolsService
from tests.devtools.helpers import RunBuilder, iso

T0 = 1_800_000_000.0  # the instant every run below starts at
TASK = "runtime.celery.task"
DETAIL = {"presentation": {"display": "detail"}}
REQUESTED, COMPLETED, FAILED = (f"runtime.celery.boundary.{n}" for n in ("requested", "completed", "failed"))
ROOT, BOUNDARY, CHILD, LEAF = "00000000000000a1", "00000000000000b2", "00000000000000c3", "00000000000000d4"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def read_at(records: list[dict[str, Any]], seconds_after_start: float) -> tuple[RunDetailOut, DevtoolsService]:
    """Ingest ``records``, read their run ``seconds_after_start`` after T0, and check that the raw
    records are still exactly what was sent."""
    service = DevtoolsService(Database(":memory:"), clock=Clock(T0 + seconds_after_start))
    texts = [json.dumps(r, separators=(",", ":")) for r in records]
    body = ('{"schemaVersion":5,"records":[' + ",".join(texts) + "]}").encode()
    result = service.ingest(split_batch(body))
    assert all(d.outcome == "accepted" for d in result.dispositions)
    run_id = records[0]["runId"]
    found = service.run_detail(run_id, infrastructure=True)
    assert found is not None
    raw = service.raw_records(run_id)
    assert raw == '{"runId":"' + run_id + '","records":[' + ",".join(texts) + "]}"
    return found[0], service


def span(detail: RunDetailOut, span_id: str) -> SpanOut:
    return next(s for s in detail.spans if s.span_id == span_id)


def codes(s: SpanOut) -> list[str]:
    return [d.code for d in s.diagnostics]


def boundary_run(run: RunBuilder, *tail: dict[str, Any], lease_s: float = 30.0,
                 root_ends: bool = True) -> list[dict[str, Any]]:
    """A root action span that opened a child-task boundary (and, by default, ended at +1 s)."""
    records = [
        run.start(),
        run.span_start(ROOT, "plan research", T0),
        run.span_start(BOUNDARY, "rank citations", T0 + 0.5, parent=ROOT, primitive=TASK, attributes=DETAIL),
        run.event(BOUNDARY, REQUESTED, T0 + 0.5, {"boundaryId": "bnd_1", "leaseExpiresAt": iso(T0 + lease_s)}),
    ]
    if root_ends:
        records.append(run.span_end(ROOT, T0 + 1, T0))
    return records + list(tail)


def test_rule_1_a_boundary_ends_at_its_completed_acknowledgement() -> None:
    run = RunBuilder("plan research", started=T0)
    child_segment = "seg_" + "c" * 24
    detail, _ = read_at(boundary_run(run,
        run.event(BOUNDARY, COMPLETED, T0 + 4, {"boundaryId": "bnd_1", "status": "ok"}, segment_id=child_segment),
    ), 5)
    boundary = span(detail, BOUNDARY)
    assert (boundary.status, boundary.ended_at, boundary.reconciled_from) == ("ok", iso(T0 + 4), "boundary.event")
    assert boundary.raw_status == "running"


def test_rule_1_a_failed_acknowledgement_ends_the_boundary_in_error() -> None:
    run = RunBuilder("plan research", started=T0)
    detail, _ = read_at(boundary_run(run,
        run.event(BOUNDARY, FAILED, T0 + 3, {"boundaryId": "bnd_1", "error": {"message": "boom"}}),
    ), 5)
    assert (span(detail, BOUNDARY).status, span(detail, BOUNDARY).ended_at) == ("error", iso(T0 + 3))


def test_rule_2_a_boundary_whose_lease_passed_without_acknowledgement_is_stale_at_the_lease() -> None:
    run = RunBuilder("plan research", started=T0)
    before, _ = read_at(boundary_run(run, lease_s=10), 9)
    assert span(before, BOUNDARY).status == "running"
    assert before.recheck_at == iso(T0 + 10)
    after, _ = read_at(boundary_run(run, lease_s=10), 11)
    boundary = span(after, BOUNDARY)
    assert (boundary.status, boundary.ended_at, codes(boundary)) == ("stale", iso(T0 + 10), ["boundary-lease-expired"])


def test_rule_3_a_running_span_under_a_terminal_ancestor_takes_its_end_or_ok_with_evidence() -> None:
    run = RunBuilder("writer", "flow.run", started=T0)
    records = [
        run.start(),
        run.span_start(ROOT, "writer", T0, primitive="flow.run"),
        run.span_start(CHILD, "plan step", T0 + 1, parent=ROOT, primitive="flow.step"),
        run.span_start(LEAF, "draft", T0 + 1.5, parent=ROOT, primitive="generation.call"),
        run.artifact(LEAF, "output", T0 + 2, {"text": "draft"}),
        run.span_end(ROOT, T0 + 3, T0, status="suspended"),
    ]
    detail, _ = read_at(records, 5)
    step, generation = span(detail, CHILD), span(detail, LEAF)
    assert (step.status, step.ended_at, step.reconciled_from) == ("suspended", iso(T0 + 3), "terminal.ancestor")
    assert (generation.status, generation.ended_at) == ("ok", iso(T0 + 3))


def test_rule_3_leaves_a_boundary_alone_while_its_lease_runs() -> None:
    run = RunBuilder("plan research", started=T0)
    detail, _ = read_at(boundary_run(run, lease_s=30), 5)  # the root ended at +1 s; the child still runs
    assert span(detail, BOUNDARY).status == "running"


def test_rule_4_a_passed_deadline_makes_the_span_its_ancestors_and_the_run_incomplete() -> None:
    run = RunBuilder(started=T0)
    records = [
        run.start(),
        run.span_start(ROOT, "answer", T0),
        run.span_start(CHILD, "chat gpt", T0 + 1, parent=ROOT, primitive="generation.call",
                       attributes={"timeoutMs": 5000}),
        run.span_start(LEAF, "rank", T0 + 1, parent=ROOT, deadlineAt=iso(T0 + 100)),
    ]
    detail, _ = read_at(records, 7)
    generation = span(detail, CHILD)
    assert (generation.status, generation.ended_at, codes(generation)) == (
        "incomplete", iso(T0 + 6), ["operation-deadline-exceeded"])
    assert (span(detail, ROOT).status, span(detail, ROOT).ended_at) == ("incomplete", iso(T0 + 6))
    assert span(detail, LEAF).status == "running"  # its own deadline has not passed
    assert (detail.run.status, detail.run.ended_at) == ("incomplete", iso(T0 + 6))


def test_rule_5_a_running_span_with_all_children_terminal_takes_the_worst_status_and_latest_end() -> None:
    run = RunBuilder(started=T0)
    records = [
        run.start(),
        run.span_start(ROOT, "answer", T0),
        run.span_start(CHILD, "tool a", T0 + 1, parent=ROOT),
        run.span_start(LEAF, "tool b", T0 + 1, parent=ROOT),
        run.span_end(CHILD, T0 + 4, T0 + 1, status="cancelled"),
        run.span_end(LEAF, T0 + 2, T0 + 1, status="ok"),
    ]
    detail, _ = read_at(records, 10)
    root = span(detail, ROOT)
    assert (root.status, root.ended_at, root.reconciled_from) == ("cancelled", iso(T0 + 4), "terminal.children")
    assert (detail.run.status, detail.run.ended_at) == ("cancelled", iso(T0 + 4))


def test_rule_6_a_span_with_no_activity_for_60_s_is_stale_and_the_run_incomplete() -> None:
    run = RunBuilder(started=T0)
    records = [run.start(), run.span_start(ROOT, "answer", T0), run.span_start(CHILD, "tool", T0 + 1, parent=ROOT),
               run.event(CHILD, "progress", T0 + 20)]
    fresh, _ = read_at(records, 79)
    assert (span(fresh, CHILD).status, fresh.run.status) == ("running", "running")
    assert fresh.recheck_at == iso(T0 + 80)
    old, _ = read_at(records, 81)
    assert (span(old, CHILD).status, codes(span(old, CHILD))) == ("stale", ["missing-span-end"])
    assert span(old, ROOT).status == "stale"
    assert (old.run.status, [d.code for d in old.run.diagnostics]) == ("incomplete", ["missing-span-end"])


def test_rule_6_a_future_lease_protects_the_span_its_ancestors_and_descendants() -> None:
    run = RunBuilder("plan research", started=T0)
    child = run.span_start(CHILD, "child task", T0 + 1, parent=BOUNDARY)
    records = boundary_run(run, child, lease_s=600, root_ends=False)
    detail, _ = read_at(records, 300)
    assert {s.span_id: s.status for s in detail.spans} == {ROOT: "running", BOUNDARY: "running", CHILD: "running"}
    assert detail.run.status == "running"


def test_rule_6_a_suspended_run_is_suspended_never_stale() -> None:
    run = RunBuilder("writer", "flow.run", started=T0)
    records = [run.start(), run.span_start(ROOT, "writer", T0, primitive="flow.run"),
               run.span_start(CHILD, "approval", T0 + 1, parent=ROOT, primitive="flow.suspension"),
               run.suspend(T0 + 2)]
    detail, _ = read_at(records, 24 * 3600)
    assert detail.run.status == "suspended"
    assert [s.status for s in detail.spans] == ["running", "running"]
    assert detail.segments[0].suspended
