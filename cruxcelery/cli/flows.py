"""``cruxcelery flows list|show|signal|cancel|retry|delete|purge``: operate the flows of an app's
``Crux`` from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from cruxcelery.cli.common import FINDING, OK, USAGE, CliError, add_app_argument, load_crux, run
from cruxcelery.flows.codec import MAX_DEPTH
from cruxcelery.flows.status import FLOW_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add ``flows`` and its subcommands to the ``cruxcelery`` parser."""
    flows = commands.add_parser("flows", help="list, inspect, signal, cancel, retry, delete and purge flows")
    sub = flows.add_subparsers(dest="flows_command", required=True, metavar="COMMAND")

    listing = _command(sub, "list", "a page of flows, newest status change first", _list)
    listing.add_argument("--status", choices=FLOW_STATUSES, help="only flows in this status")
    listing.add_argument("--name", help="only flows of this name")
    listing.add_argument("--limit", type=int, default=50, help="page size, 1 to 1000 (default 50)")
    listing.add_argument("--cursor", help="the next page's cursor, printed by the previous page")
    listing.add_argument("--json", action="store_true", help="print JSON")

    show = _command(sub, "show", "a flow's input, steps, wait, rejected signals and error", _show)
    show.add_argument("flow_id", metavar="FLOW_ID")
    show.add_argument("--json", action="store_true", help="print the whole snapshot as JSON")

    signal = _command(sub, "signal", "send a signal (validated against the flow's schema)", _signal)
    signal.add_argument("flow_id", metavar="FLOW_ID")
    signal.add_argument("name", metavar="NAME")
    signal.add_argument("payload", metavar="PAYLOAD_JSON", nargs="?", default=None,
                        help="the payload as JSON ('-' reads it from stdin; default: null)")
    signal.add_argument("--signal-id", default=None, help="a retried signal with the same id is stored once")

    cancel = _command(sub, "cancel", "cancel a flow (a no-op on a finished one)", _cancel)
    cancel.add_argument("flow_id", metavar="FLOW_ID")
    cancel.add_argument("--reason", default=None)

    retry = _command(sub, "retry", "run a failed flow again from its first unrecorded step", _retry)
    retry.add_argument("flow_id", metavar="FLOW_ID")

    delete = _command(sub, "delete", "delete a flow and every key of it now", _delete)
    delete.add_argument("flow_id", metavar="FLOW_ID")

    purge = _command(sub, "purge", "delete finished flows", _purge)
    purge.add_argument("--status", choices=sorted(TERMINAL_STATUSES), help="only finished flows in this status")
    purge.add_argument("--older-than", type=float, default=0.0, metavar="SECONDS",
                       help="only flows not updated for this long (default 0)")
    purge.add_argument("--limit", type=int, default=1000, help="delete at most this many (default 1000)")


def _command(sub: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    add_app_argument(parser)
    parser.set_defaults(handler=lambda options: run(handler, options, f"flows {name}"))
    return parser


def _flows(options: argparse.Namespace) -> FlowRuntime:
    return load_crux(options.app).flows


# -- list ---------------------------------------------------------------------------------------------
def _list(options: argparse.Namespace) -> int:
    if not 1 <= options.limit <= 1000:
        raise CliError(f"--limit must be between 1 and 1000, not {options.limit}", USAGE)
    flows, cursor = _flows(options).list_flows(status=options.status, name=options.name, limit=options.limit,
                                               cursor=options.cursor)
    if options.json:
        print(json.dumps({"flows": [f.model_dump(mode="json") for f in flows], "next_cursor": cursor}, indent=2))
        return OK
    if not flows:
        print("no flows" + (" matching the filters" if options.status or options.name else ""))
        return OK
    rows = [("FLOW_ID", "NAME", "STATUS", "UPDATED", "AT")]
    rows += [(f.flow_id, f.name, f.status, when(f.updated_at), f.suspended_at or "") for f in flows]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    if cursor:
        print(f"\nmore: cruxcelery flows list --cursor {cursor}" + _filters(options))
    return OK


def _filters(options: argparse.Namespace) -> str:
    parts = [f" --status {options.status}" if options.status else "", f" --name {options.name}" if options.name else "",
             f" --limit {options.limit}" if options.limit != 50 else ""]
    return "".join(parts)


# -- show ---------------------------------------------------------------------------------------------
def _show(options: argparse.Namespace) -> int:
    crux = load_crux(options.app)
    snap = crux.flows.store.snapshots.require(options.flow_id)
    if options.json:
        print(json.dumps(snap.model_dump(mode="json", by_alias=True), indent=2))
        return OK
    print(f"flow {snap.flow_id} ({snap.name}): {snap.status}")
    print(f"  created {when(snap.created_at)}, updated {when(snap.updated_at)}, {snap.segments} execution(s), "
          f"version {snap.version}")
    if snap.parent_flow_id:
        print(f"  parent flow: {snap.parent_flow_id}")
    run_id = snap.trace_context.get("run_id")
    if run_id:
        devtools = crux.settings.devtools_url
        print(f"  run: {run_id}" + (f" ({devtools}/runs/{run_id})" if devtools else ""))
    print("input:")
    print(_indent(_json(snap.input)))
    print("steps:" if snap.completed_steps else "steps: none recorded")
    order = [*snap.step_order, *(s for s in snap.completed_steps if s not in snap.step_order)]
    for number, label in enumerate(order, 1):
        step = snap.completed_steps.get(label)
        if step is None:
            continue
        attempts = f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"
        print(f"  {number}. {label}: {step.duration_ms:.1f} ms, {attempts}, done {when(step.completed_at)}")
        print(_indent(f"output: {_preview(step.output)}", 5))
    _print_waiting(snap)
    if snap.rejected_signals:
        print("rejected signals:")
        for rejected in snap.rejected_signals:
            print(f"  - {rejected.get('name')} at {rejected.get('at')}: payload {_preview(rejected.get('payload'))}")
            for error in rejected.get("errors") or []:
                where = ".".join(str(p) for p in error.get("loc", ())) or "(payload)"
                print(f"      {where}: {error.get('msg', '')}")
    if snap.status == "completed":
        print(f"output: {_preview(snap.output, 2000)}")
    if snap.cancel_reason:
        print(f"cancel reason: {snap.cancel_reason}")
    if snap.error is not None:
        _print_error(snap.error.model_dump(mode="json", exclude_none=True), snap.flow_id)
    return OK


def _print_waiting(snap: Any) -> None:
    waiting = snap.waiting
    if waiting is None:
        return
    deadline = f", times out {when(waiting.timeout_at)}" if waiting.timeout_at is not None else ""
    if waiting.kind == "child":
        print(f"waiting for: the child task {waiting.child_task_id} of step {waiting.name!r} "
              f"(attempt {waiting.occurrence}){deadline}")
        return
    if waiting.kind == "condition":
        every = f", re-checked every {waiting.every_s:g} s" if waiting.every_s else ""
        print(f"waiting for: the condition {waiting.name!r}{every}{deadline}")
        return
    print(f"waiting for: the signal {waiting.name!r}{deadline}")
    schema = waiting.schema_ or snap.signals.get(waiting.name)
    if schema:
        print("  schema:")
        print(_indent(_json(schema), 4))
    print(f"  send it with: cruxcelery flows signal {snap.flow_id} {waiting.name} '<payload JSON>'")


def _print_error(error: dict[str, Any], flow_id: str) -> None:
    name = error.get("name")
    print(f"error: {name + ': ' if name else ''}{error.get('message', '')}")
    for key, value in error.items():
        if key not in ("name", "message", "traceback", "stack", "stacktrace"):
            print(f"  {key}: {value}")
    trace = error.get("traceback") or error.get("stack") or error.get("stacktrace")
    if trace:
        print("  traceback:")
        print(_indent(str(trace).rstrip(), 4))
    else:
        print("  (no traceback stored: see the worker's log, or the flow's run in devtools)")
    print(f"  run it again from its first unrecorded step: cruxcelery flows retry {flow_id}")


# -- signal, cancel, retry, delete, purge -------------------------------------------------------------
def _signal(options: argparse.Namespace) -> int:
    raw = sys.stdin.read() if options.payload == "-" else options.payload
    payload: Any = None
    if raw is not None:
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise CliError(f"PAYLOAD_JSON is not JSON ({exc}): {raw[:80]!r}. Quote it for the shell, e.g. "
                           f"cruxcelery flows signal {options.flow_id} {options.name} '{{\"approved\": true}}'",
                           USAGE) from None
        except RecursionError:  # the decoder recurses once per level: a deep document exhausts the stack
            raise CliError(f"PAYLOAD_JSON nests too deeply to read ({raw[:40]!r}...); a flow keeps values "
                           f"at most {MAX_DEPTH} levels deep. Send a flatter payload.", USAGE) from None
    _flows(options).signal(options.flow_id, options.name, payload, options.signal_id)
    print(f"signal {options.name!r} stored for flow {options.flow_id}; its resume is published")
    return OK


def _cancel(options: argparse.Namespace) -> int:
    flows = _flows(options)
    before = flows.store.snapshots.require(options.flow_id)
    summary = flows.cancel(options.flow_id, options.reason)
    if before.is_terminal:
        print(f"flow {summary.flow_id} is already {summary.status}; nothing to cancel")
    else:
        print(f"flow {summary.flow_id} cancelled")
    return OK


def _retry(options: argparse.Namespace) -> int:
    from cruxcelery.flows.admin import FlowNotRetryable, retry

    try:
        summary = retry(_flows(options), options.flow_id)
    except FlowNotRetryable as exc:
        hint = ("cancel it first if it must stop" if exc.status not in TERMINAL_STATUSES
                else "start a new flow instead")
        raise CliError(f"{exc}; {hint} (see: cruxcelery flows show {exc.flow_id})", FINDING) from None
    print(f"flow {summary.flow_id} is {summary.status} again: it runs from its first unrecorded step")
    return OK


def _delete(options: argparse.Namespace) -> int:
    if not _flows(options).delete(options.flow_id):
        raise CliError(f"no flow {options.flow_id!r} to delete (already deleted or expired). "
                       "List the flows with: cruxcelery flows list", FINDING)
    print(f"flow {options.flow_id} deleted")
    return OK


def _purge(options: argparse.Namespace) -> int:
    if options.older_than < 0 or not 1 <= options.limit <= 100_000:
        raise CliError("--older-than must be >= 0 and --limit between 1 and 100000", USAGE)
    deleted = _flows(options).purge(options.status, options.older_than, options.limit)
    which = options.status or "finished"
    print(f"deleted {deleted} {which} flow{'s' if deleted != 1 else ''}"
          + (f" not updated for {options.older_than:g} s" if options.older_than else ""))
    return OK


# -- formatting ---------------------------------------------------------------------------------------
def when(epoch_ms: int | None) -> str:
    from datetime import UTC, datetime

    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _preview(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())
