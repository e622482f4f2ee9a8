"""A durable child runs once per step attempt, however often its message is delivered (kombu
restoring a message a dead worker held, the sweeper re-publishing it, a step replayed after a crash
between publishing its child and saving ``waiting``).

Before a child's body runs, its execution records itself as the child's runner, in one step with
a check of the child's stored outcome: a child whose outcome is stored never runs again, and a
child that a live execution runs now is not run a second time. Either refuses the execution (the
runtime acknowledges its message and skips its body). A runner is replaced when its worker's
heartbeat stopped (the sweeper re-publishes that worker's messages for the same reason) or when it
runs an earlier Celery attempt (Celery publishes a retry before the failing attempt ends). The
record is renewed while the child runs and forgotten when it ends, after its outcome is stored."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cruxcelery.flows import clock
from cruxcelery.flows.codec import dumps
from cruxcelery.flows.lease_renewer import HeldLease, renewer
from cruxcelery.flows.store.ttl import ttl_ms
from cruxcelery.flows.sweeper import worker_timeout_s

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime

log = logging.getLogger("cruxcelery.flows")


@dataclass(frozen=True)
class _Run:
    flow_id: str
    step_key: str
    holder: str
    lease: HeldLease


class ChildRuns:
    """The children this process runs now, by task id."""

    def __init__(self, flows: FlowRuntime) -> None:
        self._flows = flows
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def admit(self, flow_id: str, step_key: str, task_id: str, attempt: int) -> bool:
        """Record this execution as the child's runner; ``False`` when it must not run."""
        store = self._flows.store
        lease_s = self._flows.crux.settings.flow_lease_s
        ttl = ttl_ms(lease_s, "flow_lease_s")
        holder = dumps({"worker": self._flows.sweeper.worker_id, "host": socket.gethostname(), "pid": os.getpid(),
                        "attempt": attempt, "token": secrets.token_hex(8)})
        verdict, current = store.children.start(flow_id, step_key, holder, ttl)
        if verdict == "held" and self._replaceable(current, attempt):
            verdict, current = store.children.start(flow_id, step_key, holder, ttl, replacing=current)
        if verdict == "done":
            # its report may have stopped after storing the outcome: the flow waiting on it goes on
            self._flows.resume_waiting_on_child(flow_id, step_key)
            store.claims.unclaim(task_id)  # nothing is left to recover of this task
            log.info("cruxcelery: child %s of flow %s (step %s) already reported its outcome; this delivery "
                     "does not run", task_id, flow_id, step_key)
            return False
        if verdict == "held":
            log.info("cruxcelery: child %s of flow %s (step %s) is running in another execution; this "
                     "delivery does not run", task_id, flow_id, step_key)
            return False
        lease = HeldLease(flow_id, holder, lambda fid, token: store.children.renew(fid, step_key, token, ttl))
        renewer.hold(lease, lease_s)
        with self._lock:
            self._runs[task_id] = _Run(flow_id, step_key, holder, lease)
        return True

    def end(self, task_id: str) -> None:
        """The execution of ``task_id`` in this process ended (for good or for a retry)."""
        with self._lock:
            run = self._runs.pop(task_id, None)
        if run is not None:
            renewer.release(run.lease)
            self._flows.store.children.end(run.flow_id, run.step_key, run.holder)

    def _replaceable(self, holder: str, attempt: int) -> bool:
        """A runner that runs an earlier attempt, whose process on this host is gone (a pool process
        killed while its worker lives on: the worker requeues the message at once), or whose
        worker stopped its heartbeat."""
        try:
            recorded = json.loads(holder)
            worker, held_attempt = str(recorded["worker"]), int(recorded["attempt"])
        except (ValueError, KeyError, TypeError):
            return True
        if held_attempt < attempt:
            return True
        if recorded.get("host") == socket.gethostname() and not _alive(recorded.get("pid")):
            return True
        since = clock.now_ms() - int(worker_timeout_s(self._flows.crux.settings) * 1000)
        return not self._flows.store.workers.alive(worker, since)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # not known: only the heartbeat can tell
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True
