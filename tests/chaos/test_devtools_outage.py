"""Devtools hanging (accepts the connection, reads the request, never answers), answering 500, and
down, each after a healthy spell, while real prefork workers run no-op actions: on the HTTP path
(``CRUX_SPOOL=off``: an in-process queue and a sender thread per pool process) and on the spool path
(records appended to a Redis stream, forwarder threads POST them), side by side.

Actions keep completing. On the HTTP path a hanging devtools stalls at most the first action of each
pool process, and for at most the flush budget (3 s): the circuit breaker is then open and later
flushes do not wait on HTTP (p50 added time ≤ 1 ms); a refused connection or a 500 opens it at once.
The spool path never waits on HTTP. When devtools answers again every record emitted is delivered (the workers also
write every record to ``CRUX_RECORDS_FILE``, the reference), none twice by record id."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cruxcelery.testing import read_jsonl
from tests.http_server import Answer, ReceivedRequest, json_body
from tests.receiver import Receiver, free_port
from tests.workers import SubprocessWorker, subprocess_worker

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(240)]

ACTIONS = 300  # per phase and per path
CONCURRENCY = 2  # pool processes per worker: each may pay the hanging devtools once
FLUSH_BUDGET_S = 3.0  # CRUX_FLUSH_TIMEOUT_S, the default
STALL_S = 0.5  # an action slower than the healthy p50 by more than this waited on devtools (not on a busy CPU)


class ChaosReceiver(Receiver):
    """A devtools receiver whose behaviour the test switches: ``ok``, ``hang`` or ``500``."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)
        self.mode = "ok"
        self.failed_requests = 0
        self.hung_requests = 0
        self._answer_again = threading.Event()
        self._answer_again.set()

    def set_mode(self, mode: str) -> None:
        if mode == "hang":
            self._answer_again.clear()
        self.mode = mode
        if mode != "hang":
            self._answer_again.set()  # hung requests are dropped without an answer

    def stop(self) -> None:
        self._answer_again.set()
        super().stop()

    def _handle(self, request: ReceivedRequest) -> Answer:
        mode = self.mode
        if mode == "hang":
            with self._lock:
                self.hung_requests += 1
            self._answer_again.wait(120)
            raise ConnectionAbortedError("devtools hung up without answering")
        if mode == "500":
            with self._lock:
                self.failed_requests += 1
            return 500, json_body({"error": "chaos"}), {}
        return super()._handle(request)


class Devtools:
    """One devtools address (what the worker's ``CRUX_DEVTOOLS_URL`` names), served or not."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ChaosReceiver | None = None
        self._earlier: list[str] = []  # record ids accepted by servers stopped since
        self.failed_requests = self.hung_requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.server = ChaosReceiver(self.port).start()  # type: ignore[assignment]

    def down(self) -> None:
        if self.server is not None:
            self._earlier += self.server.record_ids()
            self.failed_requests += self.server.failed_requests
            self.hung_requests += self.server.hung_requests
            self.server.stop()
            self.server = None

    def set_mode(self, mode: str) -> None:
        assert self.server is not None
        self.server.set_mode(mode)

    def record_ids(self) -> list[str]:
        return self._earlier + (self.server.record_ids() if self.server is not None else [])

    def counts(self) -> tuple[int, int]:
        server = self.server
        return (self.hung_requests + (server.hung_requests if server else 0),
                self.failed_requests + (server.failed_requests if server else 0))


@dataclass
class Lane:
    """One delivery path: its worker, its devtools, its key prefix and records file."""

    name: str
    spool: str
    tmp_path: Path
    devtools: Devtools = field(default_factory=Devtools)
    prefix: str = field(default_factory=lambda: f"crux-ct-{uuid.uuid4().hex[:8]}")
    worker: SubprocessWorker | None = None
    published: int = 0

    @property
    def records_file(self) -> Path:
        return self.tmp_path / f"records-{self.prefix}.jsonl"

    @property
    def timings_key(self) -> str:
        return f"{self.prefix}:timings"

    def env(self) -> dict[str, str]:
        return {"CRUX_SPOOL": self.spool, "CRUX_DEVTOOLS_URL": self.devtools.url, "CRUX_KEY_PREFIX": self.prefix,
                "CRUX_RECORDS_FILE": str(self.records_file), "CRUX_FLUSH_TIMEOUT_S": str(FLUSH_BUDGET_S)}

    def emitted(self) -> list[str]:
        return [r["recordId"] for r in read_jsonl(str(self.records_file))] if self.records_file.exists() else []

    def log(self) -> str:
        return self.worker.log()[-3000:] if self.worker is not None else ""


def _wait(condition: Any, timeout_s: float, message: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.05)


def _run_phase(app: Any, lanes: list[Lane], phase: str) -> None:
    """ACTIONS no-op actions on each lane, one lane after the other (a lane whose actions stop
    waiting on HTTP would otherwise take the CPU from the other and skew its timings)."""
    client = app.app.backend.client
    for lane in lanes:
        assert lane.worker is not None
        for n in range(ACTIONS):
            app.noop.apply_async(({"phase": phase, "n": n},), queue=lane.worker.queue, ignore_result=True)
        lane.published += ACTIONS
        _wait(lambda lane=lane: client.llen(lane.timings_key) >= lane.published, 120,
              lambda lane=lane: f"{lane.name}: {client.llen(lane.timings_key)} of {lane.published} actions ran\n"
              + lane.log())


def _wait_delivered(lanes: list[Lane], timeout_s: float = 45) -> None:
    for lane in lanes:
        def missing(lane: Lane = lane) -> set[str]:
            return set(lane.emitted()) - set(lane.devtools.record_ids())

        _wait(lambda missing=missing: not missing(), timeout_s,
              lambda lane=lane, missing=missing: f"{lane.name}: {len(missing())} of {len(set(lane.emitted()))} "
              "records never reached devtools\n" + lane.log())


def _timings(app: Any, lane: Lane) -> dict[str, list[float]]:
    by_phase: dict[str, list[float]] = {}
    for raw in app.app.backend.client.lrange(lane.timings_key, 0, -1):
        phase, seconds = raw.decode().split()
        by_phase.setdefault(phase, []).append(float(seconds))
    return by_phase


def test_devtools_down_hanging_or_failing_never_holds_actions_and_loses_no_record(tmp_path, db2_app):
    from tests import chaos_telemetry_app as app

    lanes = [Lane("HTTP path (CRUX_SPOOL=off)", "off", tmp_path), Lane("spool path (CRUX_SPOOL=on)", "on", tmp_path)]
    with ExitStack() as stack:
        for lane in lanes:
            lane.devtools.up()
            stack.callback(lane.devtools.down)
            lane.worker = stack.enter_context(subprocess_worker(
                tmp_path, app="tests.chaos_telemetry_app", concurrency=CONCURRENCY, env=lane.env()))
        stack.callback(_delete_keys, app, lanes)

        _run_phase(app, lanes, "healthy")
        _wait_delivered(lanes)
        for phase in ("hang", "500", "down"):
            for lane in lanes:
                lane.devtools.down() if phase == "down" else lane.devtools.set_mode(phase)
            _run_phase(app, lanes, phase)
            for lane in lanes:
                lane.devtools.up() if phase == "down" else lane.devtools.set_mode("ok")
            recovering = time.monotonic()
            _wait_delivered(lanes)
            print(f"\n[{phase}] devtools answered again: every record delivered {time.monotonic() - recovering:.1f} s "
                  "later", end="")

        print()
        for lane in lanes:
            timings = _timings(app, lane)
            healthy = statistics.median(timings["healthy"])
            emitted, delivered = lane.emitted(), lane.devtools.record_ids()
            duplicates = sum(n - 1 for n in Counter(delivered).values())
            hung, failed = lane.devtools.counts()
            print(f"{lane.name}: healthy action p50 {healthy * 1000:.2f} ms; devtools requests hung {hung}, "
                  f"answered 500 {failed}; records delivered {len(set(delivered) & set(emitted)):,} of "
                  f"{len(set(emitted)):,}, duplicates {duplicates}")
            for phase in ("hang", "500", "down"):
                times = timings[phase]
                added = [t - healthy for t in times]
                stalled = sum(a > STALL_S for a in added)
                p50, largest = max(0.0, statistics.median(added)), max(0.0, max(added))
                print(f"  devtools {phase:>4}: {len(times)} actions completed "
                      f"(p50 {statistics.median(times) * 1000:.2f} ms); added action time p50 {p50 * 1000:.2f} ms, "
                      f"largest {largest * 1000:.1f} ms; actions that waited on devtools {stalled}")
            for phase in ("hang", "500", "down"):
                times = timings[phase]
                added = [t - healthy for t in times]
                assert len(times) == ACTIONS, (lane.name, phase, len(times))
                assert max(added) <= FLUSH_BUDGET_S + 0.5, (lane.name, phase, "an action waited past the flush budget")
                stalled = sum(a > STALL_S for a in added)
                if lane.spool == "off":  # the circuit breaker's figures
                    assert statistics.median(added) <= 0.001, (lane.name, phase, "p50 added over 1 ms")
                    allowed = CONCURRENCY if phase == "hang" else 0  # a refusal or a 500 opens it at once
                else:  # the spool never waits on HTTP (its p50 moves with the machine's load only)
                    allowed = 0
                assert stalled <= allowed, (lane.name, phase, f"{stalled} actions waited on devtools (at most "
                                            f"{allowed}: the first of each pool process with devtools hanging)")
            assert set(delivered) == set(emitted) and len(emitted) == len(set(emitted))
            assert duplicates == 0, f"{lane.name}: {duplicates} records delivered twice"
            assert hung >= 1 and failed >= 1, "devtools really hung and failed"


def _delete_keys(app: Any, lanes: list[Lane]) -> None:
    client = app.app.backend.client
    for lane in lanes:
        keys = list(client.scan_iter(f"{lane.prefix}:*"))
        if lane.worker is not None:
            keys.append(lane.worker.queue)
        if keys:
            client.delete(*keys)
