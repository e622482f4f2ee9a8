"""The reference app against real prefork workers (``celery -A ... worker -P prefork``) sending
their records to a devtools server this test starts (``CRUX_DEVTOOLS_URL``); everything is read
back through the devtools JSON API. Redis db 8 (flushed) and queues of its own."""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.devtools.helpers import wait_for
from tests.workers import subprocess_worker

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(90)]
REDIS = "redis://127.0.0.1:6379/8"
APP = "tests.devtools.e2e_app"
Detail = dict[str, Any]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _when(value: Detail, check: Any) -> Detail | None:
    return value if check(value) else None


class Stack:
    def __init__(self, api: httpx.Client, env: dict[str, str], tmp: Path, modules: dict[str, Any]) -> None:
        self.api, self.env, self.tmp, self.modules = api, env, tmp, modules

    def run_named(self, name: str) -> str:
        def probe() -> str | None:
            runs = self.api.get("/api/runs", params={"name": name}).json()["runs"]
            exact = [r["runId"] for r in runs if r["name"] == name]
            return exact[0] if len(exact) == 1 else None
        return wait_for(probe, timeout_s=30, interval_s=0.2)

    def detail(self, run_id: str, infrastructure: bool = False) -> Detail:
        response = self.api.get(f"/api/runs/{run_id}", params={"infrastructure": str(infrastructure).lower()})
        assert response.status_code == 200, response.text
        body: Detail = response.json()
        return body

    def detail_when(self, run_id: str, check: Any, timeout_s: float = 30.0) -> Detail:
        """The run detail once ``check(detail)`` holds (records arrive in batches, in any order)."""
        last: list[Detail] = []

        def probe() -> Detail | None:
            last[:] = [self.detail(run_id)]
            return _when(last[0], check)

        try:
            return wait_for(probe, timeout_s=timeout_s, interval_s=0.2)
        except AssertionError:
            spans = [(s["name"], s["primitive"], s["status"], s["placeholder"]) for s in last[0]["spans"]]
            raise AssertionError(f"run {run_id} never matched; last seen: {last[0]['run']['status']} {spans}"
                                 f"\n{self.worker_log()}") from None

    def worker_log(self) -> str:
        return str(self.modules["worker"].log()[-3000:])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not _redis_up():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    import redis

    broker = redis.Redis.from_url(REDIS)
    broker.flushdb()
    tmp = tmp_path_factory.mktemp("devtools-e2e")
    queue = f"crux-devtools-e2e-{uuid.uuid4().hex[:8]}"
    saved = {key: os.environ.get(key) for key in ("CRUX_REDIS_URL", "CRUX_E2E_QUEUE")}
    os.environ.update({"CRUX_REDIS_URL": REDIS, "CRUX_E2E_QUEUE": queue})
    server = DevtoolsServer(DevtoolsConfig(db=tmp / "devtools.sqlite3"))
    try:
        modules = {name: importlib.import_module(name) for name in ("tasks", APP, "tasks.research", "flows.writer")}
        _restore(saved)
        modules["tasks"].app.set_current()
        server.start()
        env = {"CRUX_REDIS_URL": REDIS, "CRUX_E2E_QUEUE": queue, "CRUX_DEVTOOLS_URL": server.url}
        with subprocess_worker(tmp, app=APP, queue=queue, env=env) as worker, \
                httpx.Client(base_url=server.url, timeout=10.0) as api:
            yield Stack(api, env, tmp, {**modules, "worker": worker})
    finally:
        _restore(saved)
        server.stop()
        for name in list(sys.modules):
            if name in ("tasks", APP) or name.startswith(("tasks.", "flows.")):
                del sys.modules[name]
        broker.flushdb()
        broker.close()


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _by_name(detail: Detail, name: str, *, boundary: bool) -> Detail:
    found = [s for s in detail["spans"] if s["name"] == name and s["infrastructure"] == boundary]
    assert len(found) == 1, [(s["name"], s["primitive"], s["infrastructure"]) for s in detail["spans"]]
    return found[0]


def _plan_complete(detail: Detail) -> bool:
    spans = {(s["name"], s["infrastructure"]): s for s in detail["spans"]}
    wanted = [(name, boundary) for name in ("rank citations", "verify citations", "check sources")
              for boundary in (True, False)]
    return all(key in spans and spans[key]["status"] != "running" for key in wanted) and not any(
        s["placeholder"] for s in detail["spans"])


def test_plan_research_is_one_tree_with_children_under_their_folded_boundaries(stack: Stack) -> None:
    plan = stack.modules["tasks.research"].plan
    assert plan.delay({"thread_id": "e2e"}).get(timeout=30)["sources"] == 3
    run_id = stack.run_named("plan research")
    detail = stack.detail_when(run_id, _plan_complete, timeout_s=45)

    roots = [s for s in detail["spans"] if s["displayParentSpanId"] is None]
    assert [(r["name"], r["primitive"]) for r in roots] == [("plan research", "agent.run")]  # one tree
    root = roots[0]
    by_id = {s["spanId"]: s for s in detail["spans"]}
    for span in detail["spans"]:  # every span reaches the root through parents this run holds
        seen, current = set(), span
        while current["parentSpanId"] is not None:
            assert current["spanId"] not in seen
            seen.add(current["spanId"])
            current = by_id[current["parentSpanId"]]
        assert current["spanId"] == root["spanId"]

    for name, shown_under in (("rank citations", root), ("check sources", root)):
        boundary, child = _by_name(detail, name, boundary=True), _by_name(detail, name, boundary=False)
        assert (boundary["primitive"], boundary["folded"]) == ("runtime.celery.task", True)
        assert boundary["parentSpanId"] == root["spanId"]
        assert child["parentSpanId"] == boundary["spanId"]  # under its boundary...
        assert child["displayParentSpanId"] == shown_under["spanId"]  # ...shown under the root, folded
        assert child["segmentId"] != root["segmentId"]  # it ran in a segment (a task) of its own
    ranked = _by_name(detail, "rank citations", boundary=False)
    verify = _by_name(detail, "verify citations", boundary=False)
    assert by_id[verify["parentSpanId"]]["parentSpanId"] == ranked["spanId"]
    assert verify["displayParentSpanId"] == ranked["spanId"]
    assert (ranked["status"], verify["status"]) == ("ok", "ok")

    failed = _by_name(detail, "check sources", boundary=False)
    assert failed["status"] == "error" and failed["error"]["name"] == "LookupError", failed
    assert "unreachable" in failed["error"]["message"]
    assert failed["errorStack"] and "LookupError" in failed["errorStack"]
    assert "error.stack" in [a["kind"] for a in failed["artifacts"]]
    assert _by_name(detail, "check sources", boundary=True)["status"] == "error"
    assert len(detail["segments"]) >= 4  # the action's own task and one per child task
    unfolded = stack.detail(run_id, infrastructure=True)
    assert _by_name(unfolded, "rank citations", boundary=False)["displayParentSpanId"] == \
        _by_name(unfolded, "rank citations", boundary=True)["spanId"]


def test_a_child_whose_worker_is_killed_shows_stale_once_its_lease_passes(stack: Stack) -> None:
    e2e = stack.modules[APP]
    hang_queue = f"{e2e.QUEUE}-hang"
    # Its records go straight over HTTP (no Redis spool): a forwarder killed mid-batch would hold
    # spooled records of the other worker until another forwarder claims them (30 s later).
    env = {**stack.env, "CRUX_E2E_HANG_QUEUE": hang_queue, "CRUX_SPOOL": "off"}
    with subprocess_worker(stack.tmp, app=APP, queue=hang_queue, env=env, concurrency=1) as doomed:
        label = uuid.uuid4().hex[:8]
        assert e2e.spawn_hang.delay({"label": label}).get(timeout=30) == "spawned"
        wait_for(lambda: "e2e.hang" in doomed.log() and "received" in doomed.log(), timeout_s=30, interval_s=0.1)
        killed_at = time.time()
        doomed.kill()  # SIGKILL to the worker's whole process group: no end, no acknowledgement
    run_id = stack.run_named("spawn a doomed child")

    def stale(detail: Detail) -> bool:
        return _by_name(detail, "hang until killed", boundary=True)["status"] == "stale"

    detail = stack.detail_when(run_id, stale, timeout_s=e2e.HANG_LEASE_S + 20)
    boundary = _by_name(detail, "hang until killed", boundary=True)
    assert [d["code"] for d in boundary["diagnostics"]] == ["boundary-lease-expired"]
    assert boundary["endedAt"] is not None and boundary["reconciledFrom"] == "boundary.lease"
    assert time.time() - killed_at < e2e.HANG_LEASE_S + 20
    for child in (s for s in detail["spans"] if s["parentSpanId"] == boundary["spanId"]):
        assert child["status"] == "stale"  # whatever of the child arrived ends with its boundary


def test_the_writer_flow_shows_its_segments_its_suspension_and_then_completion(stack: Stack) -> None:
    writer = stack.modules["flows.writer"].writer
    flow_id = writer.start({"draft_id": "e2e-1", "brief": "Durable flows survive worker restarts"})
    wait_for(lambda: writer.status(flow_id).suspended_at == "approval", timeout_s=30, interval_s=0.05)

    def flow(check: Any) -> Detail:
        return wait_for(lambda: _when(stack.api.get(f"/api/flows/{flow_id}").json(), check), timeout_s=30,
                        interval_s=0.2)

    def waits_for_approval(f: Detail) -> bool:  # (it also suspends while its durable child runs)
        return any(r["status"] == "suspended" for r in f["runs"]) and f["segments"][-1]["suspended"] and \
            f["segments"][-1]["reason"] == "signal:approval"

    suspended = flow(waits_for_approval)
    run = next(r for r in suspended["runs"] if r["status"] == "suspended")
    assert run["name"] == "writer" and run["endedAt"] is None
    waiting = suspended["segments"][-1]  # segments in time order: the flow now waits for the approval
    assert (waiting["openedBy"], waiting["suspended"], waiting["reason"]) == ("run:resume", True, "signal:approval")
    assert suspended["segments"][0]["openedBy"] == "run:start"
    detail = stack.detail(run["runId"])
    assert detail["run"]["status"] == "suspended" and detail["run"]["diagnostics"] == []
    suspension = [s for s in detail["spans"] if s["primitive"] == "flow.suspension"]
    assert [s["status"] for s in suspension] == ["suspended"]

    writer.signal(flow_id, "approval", {"approved": True, "feedback": "shorter"})
    result = writer.result(flow_id, timeout_s=30)
    assert result is not None and result.status == "completed", stack.modules["worker"].log()[-2000:]
    done = flow(lambda f: any(r["runId"] == run["runId"] and r["status"] == "ok" for r in f["runs"]))
    assert next(r for r in done["runs"] if r["runId"] == run["runId"])["endedAt"] is not None
    detail = stack.detail_when(run["runId"], lambda d: d["run"]["status"] == "ok" and d["segments"][-1]["ended"])
    segments = detail["segments"]
    ids = [s["segmentId"] for s in segments]
    assert waiting["segmentId"] in ids and len(ids) > len(suspended["segments"])
    last = segments[-1]
    assert (last["openedBy"], last["ended"]) == ("run:resume", True)
    assert [s["openedBy"] for s in segments if s["previousSegmentId"] == waiting["segmentId"]] == ["run:resume"]
    assert all(s["previousSegmentId"] in ids for s in segments if s["openedBy"] == "run:resume")
    assert detail["run"]["endedAt"] is not None and detail["run"]["diagnostics"] == []
    names = {s["name"] for s in detail["spans"]}
    assert {"plan draft", "write draft"} <= names
