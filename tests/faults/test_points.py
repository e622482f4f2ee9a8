"""The fault points are enumerated from the code as it runs: a fault-free run of the harness's
script reaches only points listed in points.txt, so a new Redis write or publish in the flows
package fails this test until points.txt lists it (``make fault-points`` rewrites it), and the
sweep then injects every fault kind there."""

from __future__ import annotations

import pytest

from tests.faults.harness import Harness, load_points

pytestmark = pytest.mark.subprocess


@pytest.mark.timeout(600)
def test_a_fault_free_run_reaches_only_enumerated_points(tmp_path):
    assert set(Harness(tmp_path).record_points()) - set(load_points()) == set()
