"""The JSON API (README, "Devtools"), against a real devtools server."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.devtools.helpers import RunBuilder, iso, post

ROOT, BOUNDARY, CHILD = "00000000000000a1", "00000000000000b2", "00000000000000c3"
DETAIL = {"presentation": {"display": "detail"}}


def finished_run(name: str, started: float, status: str = "ok") -> tuple[RunBuilder, list[dict[str, Any]]]:
    run = RunBuilder(name, started=started)
    return run, [run.start(), run.end(started + 1, status)]


def test_runs_are_listed_newest_first_with_the_contract_fields(api: httpx.Client) -> None:
    (_old, old_records), (new, new_records) = finished_run("old", 1_800_000_000), finished_run(
        "new", 1_800_000_100, "error")
    post(api, old_records + new_records)
    runs = api.get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["new", "old"]
    assert {k: runs[0][k] for k in ("runId", "name", "rootPrimitive", "status", "startedAt", "endedAt")} == {
        "runId": new.run_id, "name": "new", "rootPrimitive": "agent.run", "status": "error",
        "startedAt": iso(1_800_000_100), "endedAt": iso(1_800_000_101)}


def test_runs_filter_by_status_name_root_primitive_and_since(api: httpx.Client) -> None:
    (_a, a_records), (_b, b_records) = (finished_run("plan research", 1_800_000_000),
                                        finished_run("write draft", 1_800_000_100, "error"))
    post(api, a_records + b_records)

    def names(**params: str) -> list[str]:
        return [r["name"] for r in api.get("/api/runs", params=params).json()["runs"]]

    assert names(status="error") == ["write draft"]
    assert names(name="research") == ["plan research"]
    assert names(rootPrimitive="flow.run") == []
    assert names(since=iso(1_800_000_050)) == ["write draft"]


def test_runs_page_with_a_cursor(api: httpx.Client) -> None:
    runs = [finished_run(f"run {i}", 1_800_000_000 + i) for i in range(5)]
    post(api, [r for _run, records in runs for r in records])
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/api/runs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["name"] for r in page["runs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"run {i}" for i in (4, 3, 2, 1, 0)]
    assert api.get("/api/runs", params={"cursor": "garbage"}).status_code == 400


def test_runs_filter_by_flow_id(api: httpx.Client) -> None:
    run = RunBuilder("writer", "flow.run")
    _other, other_records = finished_run("other", time.time())
    post(api, [run.start(attributes={"flowId": "flow_1"}), *other_records])
    assert [r["runId"] for r in api.get("/api/runs", params={"flowId": "flow_1"}).json()["runs"]] == [run.run_id]


def boundary_records(run: RunBuilder, now: float) -> list[dict[str, Any]]:
    return [
        run.start(),
        run.span_start(ROOT, "plan research", now),
        run.span_start(BOUNDARY, "rank citations", now, parent=ROOT, primitive="runtime.celery.task",
                       attributes=DETAIL),
        run.span_start(CHILD, "rank citations", now, parent=BOUNDARY, segment_id="seg_" + "c" * 24),
    ]


def test_run_detail_folds_infrastructure_spans_unless_asked(api: httpx.Client) -> None:
    run = RunBuilder("plan research")
    post(api, boundary_records(run, time.time()))
    folded = {s["spanId"]: s for s in api.get(f"/api/runs/{run.run_id}").json()["spans"]}
    assert (folded[BOUNDARY]["folded"], folded[BOUNDARY]["infrastructure"]) == (True, True)
    assert folded[CHILD]["parentSpanId"] == BOUNDARY and folded[CHILD]["displayParentSpanId"] == ROOT
    shown = api.get(f"/api/runs/{run.run_id}", params={"infrastructure": "true"}).json()
    unfolded = {s["spanId"]: s for s in shown["spans"]}
    assert shown["infrastructure"] is True
    assert (unfolded[BOUNDARY]["folded"], unfolded[CHILD]["displayParentSpanId"]) == (False, BOUNDARY)
    assert [s["spanId"] for s in shown["spans"]] == [ROOT, BOUNDARY, CHILD]  # parents first
    assert [seg["openedBy"] for seg in shown["segments"]] == ["run:start", None]


def test_run_detail_carries_events_artifacts_and_the_error_stack(api: httpx.Client) -> None:
    run = RunBuilder("plan research")
    now = time.time()
    stack = 'Traceback (most recent call last):\n  File "tasks.py", line 3\nValueError: no citations'
    post(api, [
        run.start(), run.span_start(ROOT, "plan research", now),
        run.event(ROOT, "exception", now, {"exception.type": "ValueError", "exception.stacktrace": stack}),
        run.artifact(ROOT, "error.stack", now, stack, text=True),
        run.span_end(ROOT, now + 1, now, status="error", error={"message": "no citations", "name": "ValueError"}),
        run.end(now + 1, "error", {"message": "no citations", "name": "ValueError"}),
    ])
    detail = api.get(f"/api/runs/{run.run_id}").json()
    root = detail["spans"][0]
    assert (root["status"], root["error"]["name"], root["errorStack"]) == ("error", "ValueError", stack)
    assert [e["name"] for e in root["events"]] == ["exception"]
    assert [(a["kind"], a["preview"]) for a in root["artifacts"]] == [("error.stack", stack)]
    assert (detail["run"]["status"], detail["run"]["error"]["message"]) == ("error", "no citations")


def test_a_child_run_links_to_its_parent_and_an_edge_to_its_scheduler(api: httpx.Client) -> None:
    parent = RunBuilder("digest")
    now = time.time()
    child = RunBuilder("writer", "flow.run")
    detached = RunBuilder("stream chat response")
    post(api, [
        parent.start(), parent.span_start(ROOT, "digest", now),
        child.start(parentRunId=parent.run_id, triggeredBySpanId=ROOT),
        child.span_start(CHILD, "writer", now, parent=ROOT, primitive="flow.run"),
        detached.start(),
        detached.record("edge", kind="scheduled", fromRunId=parent.run_id, fromSpanId=ROOT,
                        fromTraceId=parent.trace_id, toRunId=detached.run_id, createdAt=iso(now)),
    ])
    links = api.get(f"/api/runs/{parent.run_id}").json()["links"]
    assert [(c["runId"], c["kind"], c["spanId"]) for c in links["children"]] == [(child.run_id, "child", ROOT)]
    assert [(s["runId"], s["kind"]) for s in links["scheduled"]] == [(detached.run_id, "scheduled")]
    child_detail = api.get(f"/api/runs/{child.run_id}").json()
    assert child_detail["links"]["parent"]["runId"] == parent.run_id
    assert child_detail["spans"][0]["diagnostics"] == []  # a parent in another run is not missing
    by = api.get(f"/api/runs/{detached.run_id}").json()["links"]["scheduledBy"]
    assert [(b["runId"], b["spanId"]) for b in by] == [(parent.run_id, ROOT)]


def test_an_unknown_run_is_404(api: httpx.Client) -> None:
    assert api.get("/api/runs/run_nothing").status_code == 404
    assert api.get("/api/runs/run_nothing/records").status_code == 404


def test_search_finds_spans_by_name_and_by_attribute(api: httpx.Client) -> None:
    run = RunBuilder("plan research")
    now = time.time()
    post(api, [run.start(), run.span_start(ROOT, "rank citations", now, attributes={"agentId": "researcher-7"})])
    by_name = api.get("/api/search", params={"q": "citations"}).json()["results"]
    assert [(h["runId"], h["spanId"], h["matched"]) for h in by_name] == [(run.run_id, ROOT, "name")]
    by_attribute = api.get("/api/search", params={"q": "researcher-7"}).json()["results"]
    assert [(h["spanId"], h["matched"]) for h in by_attribute] == [(ROOT, "attribute")]
    assert api.get("/api/search").status_code == 400


def test_a_flow_shows_its_runs_and_segments_from_records(api: httpx.Client) -> None:
    run = RunBuilder("writer", "flow.run")
    now = time.time()
    resumed = "seg_" + "d" * 24
    post(api, [run.start(attributes={"flowId": "flow_w1"}), run.suspend(now + 1),
               run.record("run:resume", resumed, resumedAt=iso(now + 2), reason="signal",
                          previousSegmentId=run.segment_id),
               run.record("run:end", resumed, endedAt=iso(now + 3), durationMs=3000, status="ok")])
    flow = api.get("/api/flows/flow_w1").json()
    assert [(r["runId"], r["status"]) for r in flow["runs"]] == [(run.run_id, "ok")]
    assert [(s["suspended"], s["openedBy"]) for s in flow["segments"]] == [(True, "run:start"), (False, "run:resume")]
    assert flow["snapshot"] is None


def live_url(api: httpx.Client, run_id: str | None = None) -> str:
    return str(api.base_url).rstrip("/") + "/api/live" + (f"?runId={run_id}" if run_id else "")


EventMatch = Callable[[str, dict[str, Any]], bool]


@contextlib.contextmanager
def event_stream(url: str) -> Iterator[Callable[[EventMatch], dict[str, Any]]]:
    """Opens a server-sent event stream; yields ``next_event(match)``, which reads events until one
    matches (a read timeout of 10 s fails the test instead of hanging it)."""
    with httpx.Client(timeout=httpx.Timeout(5.0, read=10.0)) as client, client.stream("GET", url) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith(": connected"):
                break

        def next_event(match: EventMatch) -> dict[str, Any]:
            event = "message"
            for line in lines:
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if match(event, data):
                        return dict(data)
            raise AssertionError("event stream ended")

        yield next_event


def test_live_events_announce_a_run_when_its_first_record_arrives(api: httpx.Client) -> None:
    with event_stream(live_url(api)) as next_event:
        run = RunBuilder("plan research")
        post(api, [run.start()])
        announced = next_event(lambda event, data: event == "run" and data["runId"] == run.run_id)
        assert announced["new"] is True


def test_the_background_pass_publishes_a_stale_boundary_when_its_lease_passes(api: httpx.Client) -> None:
    run = RunBuilder("plan research")
    with event_stream(live_url(api, run.run_id)) as next_event:
        now = time.time()
        post(api, [
            run.start(), run.span_start(ROOT, "plan research", now),
            run.span_start(BOUNDARY, "rank citations", now, parent=ROOT, primitive="runtime.celery.task"),
            run.event(BOUNDARY, "runtime.celery.boundary.requested", now, {"leaseExpiresAt": iso(now + 1.5)}),
        ])
        assert api.get(f"/api/runs/{run.run_id}").json()["run"]["status"] == "running"
        change = next_event(lambda event, data: event == "lifecycle" and data["status"] == "stale")
        assert (change["runId"], change["previous"]) == (run.run_id, "running")
    boundary = api.get(f"/api/runs/{run.run_id}").json()["spans"][1]
    assert boundary["status"] == "stale"
    assert [d["code"] for d in boundary["diagnostics"]] == ["boundary-lease-expired"]


def test_the_web_ui_is_served_without_a_build_step(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    assert api.get("/runs/run_anything").status_code == 200
    assert "EventSource" in api.get("/static/app.js").text
    assert api.get("/static/app.css").status_code == 200
