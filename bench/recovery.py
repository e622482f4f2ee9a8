"""Recovery after ``kill -9`` of a whole worker (its main process and every pool child at once).

A prefork worker (``-c 4``, the bench's ``CRUX_BENCH_VICTIM``: step ``work`` of ``bench-recover``
holds there) takes ``flows`` flows: 4 are mid-step, up to 12 more are reserved (prefetched,
unacked) and the rest wait in the queue. The whole worker is SIGKILLed; a new worker starts at once
(as a process manager restarts one). Each flow's resume is the first attempt of step ``work`` after
the kill; the figure is the longest time from the kill to a resume, by where the flow was (goal:
every flow resumes <= lease + 5 s; the workers run with ``CRUX_FLOW_LEASE_S``=``LEASE_S``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import redis

from bench import app as bench_app
from bench import workers
from cruxcelery.flows.manager import first_task_id
from cruxcelery.flows.store.keys import FlowKeys

LEASE_S = 5
CONCURRENCY = 4


def _attempts(client: redis.Redis, flow_id: str) -> list[float]:
    return [float(v) for v in client.lrange(f"{bench_app.RECOVERY_KEY}:{flow_id}", 0, -1)]


def run(tmp: Path, flows: int = 24) -> dict[str, Any]:
    client = redis.Redis.from_url(bench_app.REDIS)
    env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_FLOW_LEASE_S": str(LEASE_S)}
    victim = workers.start({**env, "CRUX_BENCH_VICTIM": "1"}, tmp / "victim.log", concurrency=CONCURRENCY,
                           name="victim")
    rescuer = None
    keys = FlowKeys(bench_app.crux.settings.key_prefix)
    try:
        ids = [bench_app.recovering.start({"seconds": 120}) for _ in range(flows)]
        deadline = time.monotonic() + 60
        while sum(bool(_attempts(client, fid)) for fid in ids) < min(CONCURRENCY, flows):
            if time.monotonic() > deadline:
                raise RuntimeError("the victim worker did not start its flows")
            time.sleep(0.05)
        time.sleep(0.5)  # its prefetch settles
        claimed = {task_id for task_id in (k.decode() for k in client.hkeys(keys.claims()))}
        running = {fid for fid in ids if _attempts(client, fid)}
        reserved = {fid for fid in ids if fid not in running and first_task_id(fid) in claimed}
        victim.kill()
        killed = time.time()
        rescuer = workers.start(env, tmp / "rescuer.log", concurrency=2, name="rescuer")
        started = time.time()
        deadline = time.monotonic() + 4 * LEASE_S + 60
        resumed: dict[str, float] = {}
        while len(resumed) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids) - len(resumed)} of {len(ids)} flows never resumed after kill -9")
            for fid in ids:
                if fid not in resumed:
                    after = [t for t in _attempts(client, fid) if t > killed]
                    if after:
                        resumed[fid] = after[0] - killed
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while any(bench_app.recovering.status(fid).status != "completed" for fid in ids):
            if time.monotonic() > deadline:
                raise RuntimeError("recovered flows did not complete")
            time.sleep(0.1)
        reruns = sum(len(_attempts(client, fid)) - 1 for fid in running)
    finally:
        if victim.process.poll() is None:
            victim.kill()
        if rescuer is not None:
            rescuer.stop()
        for fid in locals().get("ids", []):
            client.delete(f"{bench_app.RECOVERY_KEY}:{fid}")

    def worst(group: set[str]) -> float | None:
        return max((resumed[f] for f in group), default=None)

    queued = set(ids) - running - reserved
    result = {"flows": len(ids), "lease_s": LEASE_S, "restart_s": started - killed,
              "max_s": max(resumed.values()), "mid_step": len(running), "mid_step_max_s": worst(running),
              "reserved": len(reserved), "reserved_max_s": worst(reserved), "queued": len(queued),
              "queued_max_s": worst(queued), "mid_step_reruns": reruns}
    print(f"recovery after kill -9 of a whole worker (lease {LEASE_S} s): every flow resumed, the last after "
          f"{result['max_s']:.2f} s  [goal <= lease + 5 s = {LEASE_S + 5} s]; by where it was: "
          + json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()}))
    return result
