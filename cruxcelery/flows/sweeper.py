"""The sweeper: recovery that does not depend on the broker.

Every worker's main process runs one sweeper thread and one heartbeat thread. The heartbeat
writes the worker's id every ``CRUX_SWEEP_INTERVAL_S`` on its own, so a slow sweep never makes its
worker look dead. Each tick (``CRUX_SWEEP_INTERVAL_S``) the sweeper takes the sweeper lock if it is
free (one sweeper at a time across workers), holds it for the whole sweep (the heartbeat thread
extends it meanwhile; a sweeper that lost it stops before its next step) and releases it at the
end. Before that, every worker's sweeper re-publishes its own claims for messages its main process
no longer holds (``orphans``: a pool process died after the result was stored, or while a durable
child reported). Holding the lock, it:

1. fires due timers (timeouts, re-checks, deferred publishes);
2. re-publishes messages claimed by a worker whose heartbeat stopped for the lease or 10 s,
   whichever is shorter (flow tasks and durable children it had reserved or was running when it
   died), as they were: with their ETA, expiry and retry count;
3. resumes flows whose execution lease lapsed with nobody holding it (their worker died
   mid-execution, or Redis failed under it; or a ``pending`` flow was never dispatched), at most
   once per ``RECOVER_AFTER`` leases per flow, so a backlog is never multiplied; a finished flow
   whose execution died before retiring it is retired;
4. re-publishes resumes left in the outbox (a publish that failed, or a process that died before
   it).

So after ``kill -9`` of a whole worker a flow continues within its lease plus a tick or two, not
after the broker's visibility timeout (an hour by default) and kombu's restore interval (100 s).
Countdown wake-ups stay, for latency.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any

from cruxcelery.core.envelope import TaskBinding
from cruxcelery.core.publishing import outgoing
from cruxcelery.flows import clock
from cruxcelery.flows.guard import INFRASTRUCTURE_ERRORS
from cruxcelery.flows.heartbeat import Heartbeat
from cruxcelery.flows.orphans import OrphanedClaims
from cruxcelery.flows.status import TERMINAL_STATUSES

if TYPE_CHECKING:
    from cruxcelery.flows.manager import FlowRuntime
    from cruxcelery.settings import CruxSettings

log = logging.getLogger("cruxcelery.flows")
WORKER_TIMEOUT_S = 10.0  # at most: a worker silent longer is dead and its claims are re-published
OUTBOX_GRACE_MS = 2_000  # an outbox entry older than this was not published by its writer
RECOVER_AFTER = 4  # a recovered flow is not recovered again for this many lease periods
MESSAGE_OPTIONS = ("shadow", "root_id", "parent_id", "eta", "expires", "retries")  # kept by a re-publish


def worker_timeout_s(settings: CruxSettings) -> float:
    """A worker silent (no heartbeat) this long is dead: the flow lease or 10 s, whichever is
    shorter, and never under three sweeps."""
    return max(3 * settings.sweep_interval_s, min(WORKER_TIMEOUT_S, settings.flow_lease_s))


class Sweeper:
    def __init__(self, flows: FlowRuntime) -> None:
        self._flows = flows
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = Heartbeat(self._beat, flows.crux.settings.sweep_interval_s)
        self._sweeping = threading.Event()  # this worker holds the sweeper lock and sweeps
        self._sweep_state = threading.Lock()  # a sweep's end never races its lock's renewal
        self._orphans = OrphanedClaims()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._heartbeat.start()
        self._thread = threading.Thread(target=self._run, name="crux-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0, *, drop_claims: bool = True) -> None:
        """Stop sweeping and unregister this worker. Its claims are dropped only when the broker
        took its reserved messages back (``drop_claims``: a clean exit); otherwise they stay, and
        the next sweep of another worker re-publishes them (this worker is forgotten: dead)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._heartbeat.stop(timeout_s)
        try:
            if drop_claims:
                self._flows.store.claims.drop_of(self.worker_id)
            self._flows.store.workers.forget(self.worker_id)
        except INFRASTRUCTURE_ERRORS:
            log.warning("cruxcelery: the sweeper could not unregister worker %s", self.worker_id)

    def _run(self) -> None:
        interval = self._flows.crux.settings.sweep_interval_s
        while not self._stop.is_set():
            try:
                self.tick()
            except INFRASTRUCTURE_ERRORS:
                log.warning("cruxcelery: the sweeper could not reach Redis or the broker; retrying",
                            exc_info=log.isEnabledFor(logging.DEBUG))
            except Exception:
                log.warning("cruxcelery: a sweep failed; retrying", exc_info=True)
            self._stop.wait(interval)

    def _lock_ttl_ms(self) -> int:
        return max(3 * int(self._flows.crux.settings.sweep_interval_s * 1000), 3_000)

    def _beat(self) -> None:
        """The heartbeat thread: this worker is alive; while it sweeps, the lock stays its own."""
        workers = self._flows.store.workers
        workers.heartbeat(self.worker_id)
        with self._sweep_state:
            if self._sweeping.is_set() and not workers.extend_sweeper_lock(self.worker_id, self._lock_ttl_ms()):
                self._sweeping.clear()
                log.warning("cruxcelery: worker %s lost the sweeper lock mid-sweep; it stops sweeping",
                            self.worker_id)

    def tick(self) -> dict[str, int]:
        """One sweep; returns what it did (empty unless this sweeper took the lock). The lock is
        held for the whole sweep and released at its end; each step runs only while it is held."""
        workers = self._flows.store.workers
        orphans = self.republish_orphaned_claims()
        if not workers.take_sweeper_lock(self.worker_id, self._lock_ttl_ms()):
            return {"orphans": orphans} if orphans else {}
        self._sweeping.set()
        done: dict[str, int] = {"orphans": orphans} if orphans else {}
        try:
            steps = (("timers", self._flows.timers.sweep), ("claims", self.republish_dead_claims),
                     ("leases", self.recover_lapsed_leases), ("outbox", self.republish_outbox))
            for name, step in steps:
                if not self._sweeping.is_set():
                    break
                done[name] = step()
        finally:
            with self._sweep_state:
                self._sweeping.clear()
            workers.release_sweeper_lock(self.worker_id)
        return done

    def republish_dead_claims(self) -> int:
        store = self._flows.store
        claims = store.claims.all()
        if not claims:
            return 0
        alive = store.workers.live(clock.now_ms() - int(worker_timeout_s(self._flows.crux.settings) * 1000))
        alive.add(self.worker_id)
        republished = 0
        for task_id, claim in claims.items():
            if claim.get("worker") in alive:
                continue
            message = claim.get("message") or {}
            self._republish(task_id, message)
            store.claims.unclaim(task_id)
            republished += 1
        if republished:
            log.warning("cruxcelery: re-published %d task(s) held by dead workers", republished)
        return republished

    def republish_orphaned_claims(self) -> int:
        """This worker's claims for messages it no longer holds (``orphans``): published again."""
        store = self._flows.store
        claims = store.claims.all()
        due = self._orphans.due({task_id for task_id, claim in claims.items() if claim.get("worker") == self.worker_id})
        for task_id in due:
            self._republish(task_id, claims[task_id].get("message") or {})
            store.claims.unclaim(task_id)
        if due:
            log.warning("cruxcelery: re-published %d task(s) whose execution ended without letting go of its "
                        "claim (a pool process died)", len(due))
        return len(due)

    def _republish(self, task_id: str, message: dict[str, Any]) -> None:
        crux = self._flows.crux
        raw = message.get("envelope")
        envelope = crux.codec.decode(raw, TaskBinding.of(task_id, message["name"])) if raw else None
        options: dict[str, Any] = {"task_id": task_id}
        if message.get("routing_key"):
            options["routing_key"] = message["routing_key"]
        if message.get("exchange") is not None:
            options["exchange"] = message["exchange"]
        options.update({k: message[k] for k in MESSAGE_OPTIONS if message.get(k)})
        with outgoing(envelope):
            crux.app.send_task(message["name"], args=message.get("args") or [],
                               kwargs=message.get("kwargs") or {}, **options)

    def recover_lapsed_leases(self) -> int:
        store = self._flows.store
        lease_s = self._flows.crux.settings.flow_lease_s
        candidates = store.leases.lapsed(clock.now_ms())
        if not candidates:
            return 0
        recovered = 0
        for flow_id, held in zip(candidates, store.leases.held(candidates), strict=True):
            if held:  # renewed since: the index entry catches up at the next renewal
                store.leases.postpone_check(flow_id, lease_s)
                continue
            head = store.snapshots.head(flow_id)
            if head is None:
                store.leases.untrack(flow_id)
                continue
            if head.status in TERMINAL_STATUSES:  # finished, but its execution died before retiring it
                self._flows.retire_by_id(flow_id)
                continue
            store.leases.postpone_check(flow_id, lease_s * RECOVER_AFTER)
            self._flows.dispatch(flow_id, head.name, "recover", head.queue)
            recovered += 1
        return recovered

    def republish_outbox(self) -> int:
        store = self._flows.store
        due = store.outbox.due(clock.now_ms() - OUTBOX_GRACE_MS)
        for member, entry in due:
            self._flows.publish_flow_task(entry["flow_id"], entry["name"], entry.get("reason", "recover"),
                                          entry.get("queue"))
            store.outbox.done(member)
        return len(due)

