"""Named fault points: every Redis call and broker publish the flows package makes, in the worker
processes of ``tests.faults.app``.

A call is a fault point when the innermost frame of ``cruxcelery/flows/`` on its stack is the
caller: the point is that frame's ``file:function`` and the command (a Lua script by its constant's
name in ``flows/store/scripts.py``, a pipeline by the sorted set of its commands, a publish as
``PUBLISH``). So the points are enumerated from the code as it runs: a new write is a new point,
without anyone listing it.

The harness (``tests/faults/harness.py``) arms one fault per scenario in the control database (two
for a point only recovery reaches: a trigger crash, then the fault): a point, a kind, and the flow
it belongs to (a call belongs to a flow when its arguments name the flow's id) or ``*`` for calls
that name no flow (the sweeper's scans). Each armed fault fires once, in whichever process reaches
it first:

- ``crash_before`` / ``crash_after``: the process dies (``os._exit``) before the call, or after it
  reached Redis or the broker;
- ``error_before`` / ``error_after``: the call raises a connection error without reaching Redis, or
  after it did (a lost reply);
- ``stall``: the caller freezes past the flow's lease before the call (another execution may take
  over meanwhile), then goes on;
- ``duplicate`` (publishes only): the message is published twice, as kombu restoring an unacked
  message after the sweeper re-published it would.

Every point reached is added to a set (``POINTS``); while ``RECORDING`` is set no fault fires.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery
import kombu
import redis
from redis.client import Pipeline

FLOWS_DIR = str(Path(__file__).resolve().parents[2] / "cruxcelery" / "flows") + os.sep
BROKER_DIRS = tuple(str(Path(m.__file__).parent) + os.sep for m in (kombu, celery))
CONTROL_URL = os.environ.get("CRUX_FAULTS_CONTROL", "redis://127.0.0.1:6379/14")
FLOW_ID = re.compile(rb"fx-[0-9a-f]{12}")
KINDS = ("crash_before", "crash_after", "error_before", "error_after", "stall", "duplicate")
CALL_KINDS = KINDS[:5]
CRASH_EXIT = 70
ARMED = "crux-fx:armed"  # hash: flow id or "*" -> a JSON list of faults, each fires once
FIRED = "crux-fx:fired"  # hash: fault id -> where it fired
POINTS = "crux-fx:points"  # set: the points reached while recording
RECORDING = "crux-fx:recording"


def _script_names() -> dict[str, str]:
    from cruxcelery.flows.store import scripts

    names = {}
    for name, value in vars(scripts).items():
        if name.isupper() and isinstance(value, str):
            names[hashlib.sha1(value.encode()).hexdigest()] = name
    return names


class Injector:
    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.control = redis.Redis.from_url(CONTROL_URL)
        self.scripts = _script_names()
        self.seen: set[tuple[str, bool]] = set()
        self.armed: dict[bytes, Any] = {}
        self.armed_at = 0.0
        self.lock = threading.Lock()
        self.local = threading.local()

    # -- naming ------------------------------------------------------------------------------------
    def point(self, command: str) -> str | None:
        """``file:function COMMAND`` of the innermost flows frame calling; ``None`` when the call
        is not the flows package's own: the broker's Redis commands (kombu, under a publish,
        which is a point of its own) and redis-py's script loading (part of its ``EVALSHA``)."""
        if command == "SCRIPT LOAD":
            return None
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(FLOWS_DIR):
                return f"{filename[len(FLOWS_DIR):]}:{frame.f_code.co_name} {command}"
            if command != "PUBLISH" and filename.startswith(BROKER_DIRS):
                return None
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def command_name(self, args: tuple[Any, ...]) -> str:
        name = str(args[0]).upper() if args else "?"
        if name == "SCRIPT" and len(args) > 1:
            return f"SCRIPT {str(args[1]).upper()}"
        if name == "EVALSHA" and len(args) > 1:
            return f"EVALSHA {self.scripts.get(str(args[1]), '?')}"
        return name

    # -- arming ------------------------------------------------------------------------------------
    def _faults(self, owners: set[bytes]) -> dict[bytes, Any]:
        """The armed faults, read again when older than 50 ms or when a flow the call names is not
        among them yet (a scenario arms its fault just before it starts its flow)."""
        now = time.monotonic()
        if now - self.armed_at > 0.05 or not owners <= self.armed.keys():
            self.armed = {k: json.loads(v) for k, v in self.control.hgetall(ARMED).items()}
            self.armed_at = now
        return self.armed

    def fault_for(self, point: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        flows = {m for a in args if isinstance(a, bytes | str)
                 for m in FLOW_ID.findall(a if isinstance(a, bytes) else a.encode())}
        key = (point, bool(flows))
        if key not in self.seen:  # every point reached is recorded, faults or not
            self.seen.add(key)
            self.control.sadd(POINTS, point)
            if flows:
                self.control.sadd(POINTS + ":owned", point)
        if self.control.exists(RECORDING):
            return None
        owners = flows or {b"*"}
        faults = self._faults(owners)
        for owner in owners:
            for fault in faults.get(owner, ()):
                if fault["point"] == point and self.control.hsetnx(FIRED, fault["id"], f"{os.getpid()} {point}"):
                    return fault
        return None

    # -- applying ----------------------------------------------------------------------------------
    def around(self, point: str | None, args: tuple[Any, ...], call: Any, *, publish: bool = False) -> Any:
        if point is None or getattr(self.local, "inside", False):
            return call()
        self.local.inside = True
        try:
            fault = self.fault_for(point, args)
        finally:
            self.local.inside = False
        if fault is None:
            return call()
        kind = fault["kind"]
        if kind == "crash_before":
            os._exit(CRASH_EXIT)
        if kind == "error_before":
            raise redis.ConnectionError(f"injected before {point}")
        if kind == "stall":
            time.sleep(self.stall_s)
            return call()
        result = call()
        if kind == "crash_after":
            os._exit(CRASH_EXIT)
        if kind == "error_after":
            raise redis.ConnectionError(f"injected after {point}")
        if kind == "duplicate" and publish:
            call()
        return result


_installed: Injector | None = None


@contextlib.contextmanager
def unobserved() -> Iterator[None]:
    """Calls made inside are never fault points (the scenario's own witnesses)."""
    if _installed is None:
        yield
        return
    before = getattr(_installed.local, "inside", False)
    _installed.local.inside = True
    try:
        yield
    finally:
        _installed.local.inside = before


def install(stall_s: float) -> Injector:
    """Patch redis-py and Celery's publish in this process (and the processes it forks)."""
    global _installed
    if _installed is not None:
        return _installed
    injector = _installed = Injector(stall_s)
    execute_command = redis.Redis.execute_command
    pipeline_execute = Pipeline.execute

    def patched_execute(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if self is injector.control:
            return execute_command(self, *args, **options)
        return injector.around(injector.point(injector.command_name(args)), args,
                               lambda: execute_command(self, *args, **options))

    def patched_pipeline(self: Pipeline, raise_on_error: bool = True) -> Any:
        stack = list(self.command_stack)
        names = sorted({injector.command_name(c[0]) for c in stack})
        args = tuple(a for c in stack for a in c[0])
        return injector.around(injector.point(f"PIPELINE[{'+'.join(names)}]"), args,
                               lambda: pipeline_execute(self, raise_on_error))

    from celery.app.amqp import AMQP

    create_sender = AMQP._create_task_sender

    def patched_create_sender(self: AMQP) -> Any:
        send = create_sender(self)

        def send_task_message(producer: Any, name: str, message: Any, **kwargs: Any) -> Any:
            headers = getattr(message, "headers", None) or {}
            args = (json.dumps(headers, default=str), json.dumps(getattr(message, "body", None), default=str))
            return injector.around(injector.point("PUBLISH"), args,
                                   lambda: send(producer, name, message, **kwargs), publish=True)

        return send_task_message

    redis.Redis.execute_command = patched_execute  # type: ignore[method-assign]
    Pipeline.execute = patched_pipeline  # type: ignore[method-assign]
    AMQP._create_task_sender = patched_create_sender  # type: ignore[method-assign]
    return injector
