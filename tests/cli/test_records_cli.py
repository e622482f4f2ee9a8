"""``cruxcelery records show FILE``: the run tree of a ``CRUX_RECORDS_FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cruxcelery import create_flow_id
from cruxcelery.telemetry.sinks import JsonlFileSink
from tests.cli import cli_app


def write_records(path: Path) -> str:
    """Records of one flow run up to its suspend, as a worker with CRUX_RECORDS_FILE writes them."""
    sink = JsonlFileSink(str(path))
    cli_app.crux.add_exporter(sink)
    try:
        flow_id = create_flow_id()
        cli_app.review.run_inline({"draft_id": "rec"}, flow_id=flow_id)
        cli_app.crux.flush()
    finally:
        cli_app.crux.remove_exporter(sink)
    return cli_app.review.snapshot(flow_id).trace_context["run_id"]


def test_records_show_prints_the_run_tree(cli: Any, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    run_id = write_records(records)
    result = cli("records", "show", str(records), app=None)
    assert result.code == 0, result.err
    assert f"run 'cli-review' [running] {run_id}" in result.out
    assert "- plan <flow.step> [ok]" in result.out and "- approval <flow.suspension> [suspended]" in result.out
    assert "records in 1 run" in result.out

    only = cli("records", "show", str(records), "--run", run_id, app=None)
    assert only.code == 0 and run_id in only.out
    other = cli("records", "show", str(records), "--run", "run_nope", app=None)
    assert other.code == 1 and "no run 'run_nope'" in other.err


def test_records_show_skips_broken_lines(cli: Any, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    write_records(records)
    with records.open("a", encoding="utf-8") as handle:
        handle.write('{"type": "span:start", "runId": "r"}\n')  # not a whole span record
        handle.write('{"type": "span:end", "spa')  # cut short by a killed worker
    result = cli("records", "show", str(records), app=None)
    assert result.code == 0
    assert "skipped 2 line(s) that are not records" in result.err and "plan" in result.out


def test_records_show_errors(cli: Any, tmp_path: Path) -> None:
    missing = cli("records", "show", str(tmp_path / "nope.jsonl"), app=None)
    assert missing.code == 1 and "no file" in missing.err and "CRUX_RECORDS_FILE" in missing.err
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"hello": "world"}) + "\n")
    nothing = cli("records", "show", str(empty), app=None)
    assert nothing.code == 1 and "no records in" in nothing.err and "CRUX_TELEMETRY" in nothing.err
