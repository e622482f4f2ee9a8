"""The fault points are enumerated from the code as it runs: a fault-free run of the harness's
script reaches only points listed in points.txt, so a new Redis write or publish in the flows
package fails this test until points.txt lists it (``make fault-points`` rewrites it), and the
sweep then injects every fault kind there. Each row of docs/flows.md's crash-window table names
the points of its writes: the sweep's scenarios at those points prove the row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.faults.harness import Harness, load_points

pytestmark = pytest.mark.subprocess
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_a_fault_free_run_reaches_only_enumerated_points(tmp_path):
    assert set(Harness(tmp_path).record_points()) - set(load_points()) == set()


def _table_points() -> dict[str, set[str]]:
    """The fault points each row of docs/flows.md's crash-window table names (its last column)."""
    text = (ROOT / "docs" / "flows.md").read_text()
    table = text[text.index("| # | write (module) |"):text.index("\nEvery write that changes a snapshot")]
    rows = [line.split("|") for line in table.splitlines()[2:] if line.startswith("|")]
    return {cells[1].strip(): set(re.findall(r"`([^`]+ [A-Z][^`]*)`", cells[-2])) for cells in rows}


def test_every_row_of_the_crash_window_table_names_fault_points_the_sweep_covers():
    rows = _table_points()
    listed = {point for _, point in load_points()}
    assert {row: points - listed for row, points in rows.items() if points - listed} == {}
    assert listed - set().union(*rows.values()) == set(), "points no row of docs/flows.md names"


def test_the_quick_sweep_arms_enumerated_points():
    from tests.faults.test_sweep import QUICK

    listed = set(load_points())
    assert [f.name for f in QUICK if (f.owner, f.point) not in listed] == []
