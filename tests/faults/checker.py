"""The invariants every scenario must keep, judged on Redis after the flow completed:

1. the flow completed with the output its script implies (the signal's payload included);
2. no step body and no durable child ran after its result was recorded;
3. the signal was delivered (its payload is in the output) and nothing of it is left waiting;
4. nothing of the finished flow is left behind (within ``SETTLE_S``, a few sweeps): no lease, timer,
   outbox entry, claim or index entry but the finished ones, and every key of its own expires.
"""

from __future__ import annotations

import time

import redis

from cruxcelery import FlowCompleted
from tests.faults import app as fault_app

FINISHED_INDEXES = (b":flows:status:completed", b":flows:name:", b":flows:all", b":flows:retired")
SETTLE_S = 10.0  # leftovers the sweeper removes (an outbox entry, a claim) may take a few sweeps


def check(store: redis.Redis, control: redis.Redis, flow_id: str) -> list[str]:
    problems: list[str] = []
    result = fault_app.script.result(flow_id)
    wanted = FlowCompleted(flow_id=flow_id, output={"a": "a", "child": 7, "go": f"token-{flow_id}", "b": "b"})
    if result != wanted:
        problems.append(f"result {result!r}, wanted {wanted!r}")
    ran = {k.decode(): int(v) for k, v in control.hgetall(f"crux-fx:ran:{flow_id}").items()}
    problems += [f"{what} ran {n} time(s) after its result was recorded" for what, n in ran.items()
                 if what.endswith("-after-record")]
    deadline = time.monotonic() + SETTLE_S
    while (left := _leftovers(store, flow_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return problems + left


def _leftovers(store: redis.Redis, flow_id: str) -> list[str]:
    problems = []
    needle = flow_id.encode()
    prefix = fault_app.PREFIX
    for key in store.scan_iter(f"{prefix}:*", count=1000):
        kind = store.type(key)
        if needle in key:
            if key.endswith((b":lease", b":wake")):
                if not 0 < store.pttl(key) <= fault_app.LEASE_S * 1000:
                    problems.append(f"{key.decode()} is left behind beyond the lease")
            elif b":signal:" in key:
                problems.append(f"{key.decode()} is left behind")
            elif store.pttl(key) < 0:
                problems.append(f"{key.decode()} never expires")
            continue
        if any(part in key for part in FINISHED_INDEXES):
            continue
        members: list[bytes] = []
        if kind == b"zset":
            members = [m for m in store.zrange(key, 0, -1)]
        elif kind == b"set":
            members = list(store.smembers(key))
        elif kind == b"hash":
            members = [k + b"=" + v for k, v in store.hgetall(key).items()]
        elif kind == b"string":
            members = [store.get(key) or b""]
        problems += [f"{key.decode()} still holds {m[:120]!r}" for m in members if needle in m]
    return problems
