"""The fault harness: enumerate the fault points, run scenarios (one armed fault each, or a random
schedule), check the invariants after each.

A scenario starts one flow of ``tests.faults.app`` (through the ``fx.start`` task, so creation runs
in a worker too), signals it once it waits (through ``fx.signal``) and waits for it to complete,
while a supervised subprocess worker (restarted whenever it dies, as systemd would) runs with the
injector installed. Then ``check`` (tests/faults/checker.py) judges what is in Redis."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.faults import app as fault_app
from tests.faults.checker import check
from tests.faults.injector import ARMED, CALL_KINDS, FIRED, KINDS, POINTS, RECORDING
from tests.workers import Supervised

BOUND_S = 90.0  # a scenario's flow completes within this, whatever its fault
GLOBAL_WAIT_S = 15.0  # a fault at a point no flow names (the sweeper's) fires within this
POINTS_FILE = Path(__file__).with_name("points.txt")


@dataclass(frozen=True)
class Fault:
    point: str
    kind: str
    owner: str  # "flow": the call names the scenario's flow; "*": it names none

    @property
    def name(self) -> str:
        return f"{self.kind} @ {self.point}"


@dataclass
class Outcome:
    flow_id: str
    fault: Fault | None
    problems: list[str] = field(default_factory=list)
    fired: str | None = None


TRIGGER = {"point": "store/snapshots.py:save EVALSHA SAVE", "kind": "crash_after"}


def _lines() -> list[list[str]]:
    return [line.split("\t") for line in POINTS_FILE.read_text().splitlines() if line and not line.startswith("#")]


def load_points() -> list[tuple[str, str]]:
    """The enumerated points (``owner<TAB>point[<TAB>recovery]`` lines of points.txt)."""
    return [(fields[0], fields[1]) for fields in _lines()]


def recovery_points() -> set[str]:
    """Points a fault-free run does not reach: only recovery does (after a crash)."""
    return {fields[1] for fields in _lines() if fields[2:] == ["recovery"]}


def kinds_for(point: str) -> tuple[str, ...]:
    return KINDS if point.endswith(" PUBLISH") else CALL_KINDS


def every_fault() -> list[Fault]:
    return [Fault(point, kind, owner) for owner, point in load_points() for kind in kinds_for(point)]


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store = redis.Redis.from_url(fault_app.REDIS)
        self.control = fault_app.witness
        self.store.flushdb()
        self.control.flushdb()

    @contextmanager
    def worker(self, concurrency: int = 2) -> Iterator[Supervised]:
        with Supervised(self.tmp_path, app="tests.faults.app", queue=fault_app.QUEUE, concurrency=concurrency,
                        env={"CRUX_FAULTS_INJECT": "1"}) as supervised:
            yield supervised

    # -- enumeration -------------------------------------------------------------------------------
    def record_points(self, flows: int = 2) -> list[tuple[str, str]]:
        """Run ``flows`` scenarios without faults and list every point their workers reached; a
        point is owned by the flow when its call named the flow's id."""
        self.control.set(RECORDING, 1)
        try:
            with self.worker():
                outcomes = self.run([None] * flows)
        finally:
            self.control.delete(RECORDING)
        problems = [p for o in outcomes for p in o.problems]
        assert problems == [], problems
        return self.points_seen()

    def points_seen(self) -> list[tuple[str, str]]:
        """Every point the workers reached since the harness started, with its owner."""
        seen = {p.decode() for p in self.control.smembers(POINTS)}
        owned = {p.decode() for p in self.control.smembers(POINTS + ":owned")}
        return sorted((("flow" if point in owned else "*"), point) for point in seen)

    # -- running -----------------------------------------------------------------------------------
    def run(self, faults: list[Fault | None], parallel: int = 4) -> list[Outcome]:
        """Run one scenario per fault (``None``: no fault), ``parallel`` at a time."""
        with ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(self.scenario, faults))

    def scenario(self, fault: Fault | None) -> Outcome:
        flow_id = f"fx-{uuid.uuid4().hex[:12]}"
        outcome = Outcome(flow_id, fault)
        if fault is not None:
            owner = flow_id if fault.owner == "flow" else "*"
            armed = [{"id": flow_id, "point": fault.point, "kind": fault.kind}]
            if fault.point in recovery_points():  # reached only while recovering: a crash first
                armed.insert(0, {"id": f"{flow_id}:trigger", **TRIGGER})
            self.control.hset(ARMED, owner, json.dumps(armed))
        try:
            self._drive(flow_id)
            if fault is not None and fault.owner == "*":  # a sweep reaches it: give it a few
                deadline = time.monotonic() + GLOBAL_WAIT_S
                while not self.control.hexists(FIRED, flow_id) and time.monotonic() < deadline:
                    time.sleep(0.05)
        except Exception as exc:
            outcome.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            if fault is not None:
                self.control.hdel(ARMED, flow_id if fault.owner == "flow" else "*")
        fired = self.control.hget(FIRED, flow_id)
        outcome.fired = fired.decode() if fired else None
        if not outcome.problems:
            outcome.problems.extend(check(self.store, self.control, flow_id))
        return outcome

    def _drive(self, flow_id: str) -> None:
        script = fault_app.script
        deadline = time.monotonic() + BOUND_S
        _send(fault_app.start_script, flow_id, time.time() + 0.5)
        signalled = False
        while time.monotonic() < deadline:
            try:
                summary = script.status(flow_id)
            except Exception:  # not created yet (the start task may be retrying)
                time.sleep(0.05)
                continue
            if summary.status == "completed":
                return
            assert summary.status not in ("failed", "cancelled", "expired"), f"{flow_id} ended {summary.status}"
            if not signalled and summary.status == "suspended" and summary.suspended_at == "go":
                _send(fault_app.signal_script, flow_id, f"token-{flow_id}")
                signalled = True
            time.sleep(0.05)
        try:
            status = script.status(flow_id).status
        except Exception as exc:
            status = f"unreadable ({type(exc).__name__}: {exc})"
        raise AssertionError(f"{flow_id} did not complete within {BOUND_S} s: {status}")


def _send(task: Any, *args: Any) -> None:
    """Publish, retrying while the broker is down (the soak restarts Redis)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            task.delay(*args)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def random_schedule(rng: random.Random, count: int) -> list[Fault | None]:
    """``count`` scenarios, each with a random fault (or none), for the soak."""
    faults: list[Fault | None] = [None, *every_fault()]
    return [rng.choice(faults) for _ in range(count)]
