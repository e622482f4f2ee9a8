"""The run detail a server keeps between reads (a reconciled run, each span's JSON) must read
exactly as a server that never saw the run before: after new records of any kind, and once a
lease passes with no new record at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cruxcelery.devtools.batch import split_batch
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.store import DevtoolsService
from tests.devtools.helpers import RunBuilder, iso
from tests.devtools.test_reconcile import BOUNDARY, CHILD, DETAIL, LEAF, REQUESTED, ROOT, T0, TASK, Clock

Body = dict[str, Any]
STEPS: list[list[str]] = [["start"], ["orphan", "root event"], ["parent arrives", "child ends"], ["lease passes"],
                          ["root ends", "run ends"]]


def records_of(run: RunBuilder) -> dict[str, dict[str, Any]]:
    return {
        "start": run.start(),
        "root": run.span_start(ROOT, "plan research", T0),
        "boundary": run.span_start(BOUNDARY, "rank citations", T0 + 0.5, parent=ROOT, primitive=TASK,
                                   attributes=DETAIL),
        "requested": run.event(BOUNDARY, REQUESTED, T0 + 0.5, {"leaseExpiresAt": iso(T0 + 30)}),
        "orphan": run.span_start(LEAF, "verify citations", T0 + 2, parent=CHILD),
        "root event": run.event(ROOT, "progress", T0 + 3),
        "parent arrives": run.span_start(CHILD, "rank citations", T0 + 1, parent=BOUNDARY),
        "child ends": run.span_end(LEAF, T0 + 4, T0 + 2, status="error", error={"name": "ValueError"}),
        "root ends": run.span_end(ROOT, T0 + 40, T0),
        "run ends": run.end(T0 + 41),
    }


def _ingest(service: DevtoolsService, records: list[dict[str, Any]]) -> None:
    body = json.dumps({"schemaVersion": 5, "records": records}, separators=(",", ":")).encode()
    assert all(d.outcome == "accepted" for d in service.ingest(split_batch(body)).dispositions)


def _read(service: DevtoolsService, run_id: str, infrastructure: bool) -> Body:
    found = service.run_detail_json(run_id, infrastructure=infrastructure)
    assert found is not None
    body: Body = json.loads(found[0])
    return body


@pytest.mark.parametrize("infrastructure", [False, True])
def test_a_kept_run_detail_reads_as_a_fresh_one_after_every_change(tmp_path: Path, infrastructure: bool) -> None:
    run = RunBuilder("plan research", started=T0)
    records = records_of(run)
    clock = Clock(T0 + 5)
    db = Database(tmp_path / "devtools.sqlite3")
    kept = DevtoolsService(db, clock=clock)
    _ingest(kept, [records["start"], records["root"], records["boundary"], records["requested"]])
    seen = [_read(kept, run.run_id, infrastructure)]
    for step in STEPS[1:]:
        if step == ["lease passes"]:
            clock.now = T0 + 31  # no new record: the kept view's recheck time has come
        else:
            _ingest(kept, [records[name] for name in step])
        again = _read(kept, run.run_id, infrastructure)
        fresh = _read(DevtoolsService(db, clock=clock), run.run_id, infrastructure)
        assert again == fresh, step
        seen.append(again)
    statuses = [{s["spanId"]: s["status"] for s in body["spans"]} for body in seen]
    assert statuses[1][CHILD] == "missing" and statuses[2][CHILD] == "error"  # a placeholder, then real (rule 5)
    assert statuses[2][LEAF] == "error" and statuses[3][BOUNDARY] == "stale"
    assert seen[-1]["run"]["status"] != "running"
    db.close()
