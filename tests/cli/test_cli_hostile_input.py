"""The real ``cruxcelery`` command in a subprocess, given what a shell can throw at it: a signal
payload nested deeper than a JSON decoder can recurse, and a reader of its output that goes away
(``| head``). Each ends with one clear line or none, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.test_flows_cli import suspended

REPO = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "cruxcelery.cli")
APP = ("--app", "tests.cli.cli_app")


def test_a_signal_payload_nested_too_deeply_is_a_usage_error_with_a_clear_message() -> None:
    flow_id = suspended()
    depth = 100_000
    payload = '{"approved": ' + "[" * depth + "]" * depth + "}"
    done = subprocess.run([*CLI, "flows", "signal", flow_id, "approval", "-", *APP], cwd=REPO, input=payload,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cruxcelery flows signal: PAYLOAD_JSON nests too deeply" in done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    flow_id = suspended()
    process = subprocess.Popen([*CLI, "flows", "show", flow_id, *APP], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()  # like `| head` exiting: every write the command makes finds the pipe closed
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 141, err  # as if killed by SIGPIPE, what `set -o pipefail` reports
    assert err == ""
