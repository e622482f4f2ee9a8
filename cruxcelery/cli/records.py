"""``cruxcelery records show FILE``: the run trees of a ``CRUX_RECORDS_FILE`` (JSON lines)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cruxcelery.cli.common import FINDING, OK, CliError, run

__all__ = ["read_records", "register"]

_SPAN_KEYS = ("spanId", "name", "primitive", "startedAt")


def register(commands: Any) -> None:
    records = commands.add_parser("records", help="read telemetry records written by CRUX_RECORDS_FILE")
    sub = records.add_subparsers(dest="records_command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print the run tree(s) of a records file",
                          description="print the run tree(s) of a CRUX_RECORDS_FILE (JSON lines)")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--run", default=None, metavar="RUN_ID", help="only this run (and nothing else)")
    show.add_argument("--no-detail", action="store_true", help="hide spans marked as detail")
    show.set_defaults(handler=lambda options: run(_show, options, "records show"))


def read_records(path: str) -> tuple[list[dict[str, Any]], int]:
    """The records of a JSON-lines file, in file order, and how many lines were skipped (not JSON,
    or not a record: a line cut short by a killed worker, for instance)."""
    records: list[dict[str, Any]] = []
    skipped = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if _usable(record):
                    records.append(record)
                else:
                    skipped += 1
    except FileNotFoundError:
        raise CliError(f"no file {path!r}. Point CRUX_RECORDS_FILE at a path on the worker (and the web "
                       "process), run some tasks, then pass that path.", FINDING) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path!r}: {exc}. Pass a file written by CRUX_RECORDS_FILE.", FINDING) from None
    return records, skipped


def _usable(record: Any) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("type"), str) or "runId" not in record:
        return False
    if record["type"] == "span:start":
        return all(key in record for key in _SPAN_KEYS)
    if record["type"] in ("span:end", "span:event"):
        return "spanId" in record
    if record["type"] == "edge":
        return all(key in record for key in ("toRunId", "fromSpanId", "fromRunId", "kind"))
    return True


def _show(options: argparse.Namespace) -> int:
    from cruxcelery.telemetry.tree import render

    records, skipped = read_records(options.file)
    if options.run:
        records = [r for r in records if r["runId"] == options.run]
    if skipped:
        print(f"cruxcelery records show: skipped {skipped} line(s) that are not records", file=sys.stderr)
    if not records:
        what = f"run {options.run!r}" if options.run else "records"
        raise CliError(f"no {what} in {options.file!r}. Check that the workers write there (CRUX_RECORDS_FILE) "
                       "and that CRUX_TELEMETRY is not false.", FINDING)
    print(render(records, show_detail=not options.no_detail))
    runs = len({r["runId"] for r in records})
    print(f"\n{len(records)} records in {runs} run{'s' if runs != 1 else ''}")
    return OK
