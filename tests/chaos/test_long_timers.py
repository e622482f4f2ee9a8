"""Timers and ``run_after`` delays (8 s) longer than the broker's visibility timeout (3 s, see
``tests.chaos_flows_app``): the Redis transport redelivers an ETA message left unacknowledged past
it (kombu sweeps every second here), so a plain 8 s countdown runs two or three times (checked, so the
case keeps its teeth). A suspend timeout, a
``wait_until`` re-check and a deferred ``run_after`` each fire exactly once, not before they are
due, whatever the transport delivers again."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(120)]

DELAY_S = 8.0
QUIET_AFTER_S = 4.0  # past the last firing: longer than the visibility timeout, nothing more comes


def _ran_at(app, key: str) -> list[float]:
    return [float(v) for v in app.counters.redis.lrange(f"crux-test:ran-at:{key}", 0, -1)]


def _wakes(app, flow_id: str) -> dict[str, int]:
    """Executions of the flow's task by reason, counting distinct messages (task ids): a message
    the transport delivered again is the same wake-up, a timer fired twice would be two."""
    seen = {v.decode() for v in app.counters.redis.lrange(app.deliveries_key(flow_id), 0, -1)}
    reasons = [entry.split(":", 1)[0] for entry in seen]
    return {reason: reasons.count(reason) for reason in sorted(set(reasons))}


def test_timers_and_run_after_longer_than_the_visibility_timeout_fire_once(db2_app, db2_worker):
    assert DELAY_S > 2 * db2_app.VISIBILITY_TIMEOUT_S
    counters = db2_app.counters
    later_key, plain_key = f"later-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"
    started = time.time()
    timed = db2_app.timed.start({"timeout_s": DELAY_S})
    rechecked = db2_app.rechecked.start({"timeout_s": DELAY_S})
    db2_app.schedule_later.delay({"key": later_key, "delay_s": DELAY_S}).get(timeout=30)
    db2_app.plain_countdown.apply_async((plain_key,), countdown=DELAY_S)

    deadline = time.monotonic() + DELAY_S + 30
    while not (db2_app.timed.status(timed).status == "expired"
               and db2_app.rechecked.status(rechecked).status == "completed" and _ran_at(db2_app, later_key)):
        assert time.monotonic() < deadline, (db2_app.timed.snapshot(timed), db2_app.rechecked.snapshot(rechecked),
                                             _ran_at(db2_app, later_key), db2_worker.log()[-3000:])
        time.sleep(0.1)
    time.sleep(QUIET_AFTER_S)  # anything delivered again would run by now

    later = _ran_at(db2_app, later_key)
    plain = _ran_at(db2_app, plain_key)
    figures = {
        "suspend timeout: expired": counters.count(timed, "expired"),
        "suspend timeout: timer wake-ups": _wakes(db2_app, timed).get("timer", 0),
        "wait_until re-check: condition evaluations": counters.count(rechecked, "checks"),
        "wait_until re-check: timer wake-ups": _wakes(db2_app, rechecked).get("timer", 0),
        "run_after: runs": len(later),
    }
    print(f"\n{DELAY_S:.0f} s delays, visibility timeout {db2_app.VISIBILITY_TIMEOUT_S:.0f} s: "
          + "; ".join(f"{k} {v}" for k, v in figures.items())
          + (f"; run_after ran {later[0] - started:.1f} s after it was scheduled" if later else ""))
    print(f"for comparison, a plain Celery countdown of {DELAY_S:.0f} s ran {len(plain)} time(s)")
    assert figures["suspend timeout: expired"] == 1
    assert _wakes(db2_app, timed) == {"start": 1, "timer": 1}, "woken once: not zero times, not twice"
    assert counters.count(timed, "executions") == 2, "the handler ran at the start and at the timeout only"
    assert figures["wait_until re-check: condition evaluations"] == 2
    assert _wakes(db2_app, rechecked) == {"start": 1, "timer": 1}
    assert db2_app.rechecked.result(rechecked).output == 2
    assert len(later) == 1, later
    assert len(plain) >= 2, "the transport no longer redelivers ETA messages: this case lost its teeth"
    assert later[0] - started >= DELAY_S - 0.05, "not before it is due"
    assert later[0] - started <= DELAY_S + 5, "and soon after"
