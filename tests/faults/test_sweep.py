"""One fault per scenario, at every enumerated point and of every kind that applies there
(tests/faults/injector.py), with the invariants of tests/faults/checker.py checked after each.
``make test`` runs a quick subset (``QUICK``); ``make faults`` (``CRUX_FAULTS=all``) all of them."""

from __future__ import annotations

import os
import re

import pytest

from tests.faults.harness import Fault, Harness, Outcome, every_fault, load_points, recovery_points

pytestmark = pytest.mark.subprocess

QUICK = [
    Fault("store/snapshots.py:save EVALSHA SAVE", "crash_after", "flow"),
    Fault("store/signals.py:take EVALSHA TAKE_SIGNAL", "crash_after", "flow"),
    Fault("store/children.py:put HSETNX", "error_before", "flow"),
    Fault("store/children.py:put HSETNX", "crash_after", "flow"),
    Fault("store/retention.py:retire PIPELINE[DEL+PEXPIRE+ZADD+ZRANGEBYSCORE+ZREM]", "crash_before", "flow"),
    Fault("store/retention.py:retire PIPELINE[DEL+PEXPIRE+ZADD+ZRANGEBYSCORE+ZREM]", "error_after", "flow"),
    Fault("store/leases.py:acquire_or_request_wake EVALSHA ACQUIRE_OR_WAKE", "stall", "flow"),
    Fault("scope.py:<lambda> PUBLISH", "duplicate", "flow"),
    Fault("store/timers.py:due ZRANGEBYSCORE", "error_before", "*"),
]


def _faults() -> list[Fault]:
    """``CRUX_FAULTS=all``: every fault; ``CRUX_FAULTS=<regex>``: those whose name matches."""
    wanted = os.environ.get("CRUX_FAULTS")
    if not wanted:
        return QUICK
    return [f for f in every_fault() if wanted == "all" or re.search(wanted, f.name)]


def _report(outcomes: list[Outcome]) -> tuple[list[str], list[str]]:
    """The scenarios that broke an invariant, and the faults that never fired at a point a
    fault-free run reaches (a point only recovery reaches fires when its trigger crash leads there:
    those that did not are printed)."""
    failures = [f"{o.fault.name if o.fault else 'no fault'} [{o.flow_id}]: {o.problems}"
                for o in outcomes if o.problems]
    unfired = [o.fault for o in outcomes if o.fault is not None and o.fired is None]
    recovery = recovery_points()
    print(f"faults that fired: {sum(1 for o in outcomes if o.fired)}; at recovery points, not reached: "
          f"{sorted(f.name for f in unfired if f.point in recovery)}")
    return failures, [f.name for f in unfired if f.point not in recovery]


@pytest.mark.timeout(3600)
def test_every_fault_at_every_point_keeps_the_invariants(tmp_path):
    faults = _faults()
    harness = Harness(tmp_path)
    with harness.worker():
        outcomes = harness.run([f for f in faults if f.owner == "flow"], parallel=4)
        outcomes += harness.run([f for f in faults if f.owner == "*"], parallel=1)  # one global fault at a time
    failures, unfired = _report(outcomes)
    print(f"{len(outcomes)} scenarios over {len({f.point for f in faults})} points")
    assert failures == [], "\n".join(failures)
    assert unfired == [], "faults armed at points no scenario reached"
    if os.environ.get("CRUX_FAULTS") == "all":  # recovery paths reach points a fault-free run does not
        new = sorted(set(harness.points_seen()) - set(load_points()))  # add them with `\trecovery`
        assert new == [], f"points reached but not in points.txt (add them: they are swept next time): {new}"

