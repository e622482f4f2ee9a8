"""Crux's v5 ingest contract: one test per case of ``v5-contract-cases.json`` (use-crux/crux),
sent to a real devtools server. Each asserts the stored ``{recordId, schemaVersion, segmentId,
segmentSeq}`` of every record, in arrival order, and the per-record dispositions."""

from __future__ import annotations

from typing import Any

import httpx

from tests.devtools.helpers import contract_case, identity, post, stored_records


def ingest_case(api: httpx.Client, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = contract_case(name)
    response = post(api, case["records"])
    assert response.status_code == 202
    return case, response.json()["dispositions"]


def assert_all_stored_in_arrival_order(api: httpx.Client, case: dict[str, Any], dispositions: list[Any]) -> None:
    assert [d["outcome"] for d in dispositions] == ["accepted"] * len(case["records"])
    assert [identity(r) for r in stored_records(api)] == case["expected"]


def run_status(api: httpx.Client, run_id: str) -> str:
    return str(api.get(f"/api/runs/{run_id}").json()["run"]["status"])


def test_one_segment_success_is_stored_and_ok(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "one-segment-success")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    assert run_status(api, "run_success") == "ok"


def test_one_segment_error_is_stored_with_its_error(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "one-segment-error")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    run = api.get("/api/runs/run_error").json()["run"]
    assert (run["status"], run["error"]) == ("error", {"message": "failed"})


def test_one_segment_cancelled_is_stored_and_cancelled(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "one-segment-cancelled")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    assert run_status(api, "run_cancel") == "cancelled"


def test_suspend_then_resume_in_a_fresh_process_keeps_both_segments(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "suspend-resume-fresh-process")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    detail = api.get("/api/runs/run_resume").json()
    segments = [(s["segmentId"], s["openedBy"], s["previousSegmentId"], s["firstSeq"]) for s in detail["segments"]]
    assert segments == [("seg_resume_a", "run:start", None, 1), ("seg_resume_b", "run:resume", "seg_resume_a", 1)]
    assert detail["run"]["status"] == "ok"


def test_concurrent_segments_of_one_run_are_both_accepted(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "concurrent-segments")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    segments = api.get("/api/runs/run_concurrent").json()["segments"]
    assert sorted(s["segmentId"] for s in segments) == ["seg_concurrent_a", "seg_concurrent_b"]


def test_child_before_parent_and_terminal_before_start_are_accepted(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "child-before-parent-and-terminal-before-start")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    detail = api.get("/api/runs/run_out_of_order").json()
    assert (detail["run"]["name"], detail["run"]["status"]) == ("out of order", "ok")
    child = next(s for s in detail["spans"] if s["spanId"] == "0000000000000001")
    assert [d["code"] for d in child["diagnostics"]] == ["missing-parent-span"]


def test_identical_duplicate_is_accepted_once_and_a_conflicting_record_id_rejected(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "duplicate-identical-and-conflicting-record-id")
    assert [(d["outcome"], d["code"], d["duplicate"]) for d in dispositions] == [
        ("accepted", None, False), ("accepted", None, True), ("rejected", "record_id_conflict", False),
    ]
    assert all(d["recordId"] == "rec_dup" and d["retryable"] is False for d in dispositions)
    stored = stored_records(api)
    # The three arrivals share one identity (Crux's expected list); the store keeps it once,
    # with the content of the first arrival.
    assert {tuple(e.items()) for e in case["expected"]} == {tuple(identity(r).items()) for r in stored}
    assert stored == [case["records"][0]]


def test_a_lone_run_start_after_a_store_reset_is_accepted(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "pre-v2-local-store-migration-reset")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    assert api.get("/api/runs").json()["runs"][0]["name"] == "after reset"


def test_a_span_from_a_segment_whose_earlier_records_never_arrived_is_accepted(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "missing-parent-segment-gap")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    detail = api.get("/api/runs/run_gap").json()
    assert detail["segments"][0]["missingSeqs"] == [1, 2]
    placeholder = next(s for s in detail["spans"] if s["placeholder"])
    gap = next(s for s in detail["spans"] if s["spanId"] == "0000000000000003")
    assert (placeholder["spanId"], gap["displayParentSpanId"]) == ("0000000000000004", "0000000000000004")


def test_a_crashed_run_is_shown_distinct_from_a_suspended_and_an_ended_one(api: httpx.Client) -> None:
    case, dispositions = ingest_case(api, "crash-incomplete-distinct-from-suspend-and-terminal")
    assert_all_stored_in_arrival_order(api, case, dispositions)
    statuses = {r["runId"]: r["status"] for r in api.get("/api/runs").json()["runs"]}
    assert statuses == {"run_incomplete": "incomplete", "run_suspended": "suspended", "run_terminal": "ok"}
