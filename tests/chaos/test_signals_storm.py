"""10,000 signals across 1,000 flows, sent by 4 threads through the public API while a prefork
worker (``-c 4``, visibility timeout 3 s) resumes the flows: every signal is delivered exactly
once, to its own flow, in the order it was sent. One signal in fifty is sent twice with the same
``signal_id`` (a client retrying): the retry stores nothing."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from cruxcelery import signal_flow

pytestmark = [pytest.mark.subprocess, pytest.mark.chaos, pytest.mark.timeout(240)]

FLOWS = 1_000
PER_FLOW = 10
THREADS = 4


def _cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants (the worker and its pool)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_s(int(child)) for child in children)


def test_ten_thousand_signals_across_a_thousand_flows_are_each_delivered_once(db2_app, db2_worker):
    handle = db2_app.ticks
    worker_cpu, sender_cpu = _cpu_s(db2_worker.process.pid), time.process_time()
    started = time.monotonic()
    flow_ids = [handle.start({"signals": PER_FLOW}) for _ in range(FLOWS)]
    sent: dict[str, list[int]] = {flow_id: [] for flow_id in flow_ids}
    errors: list[BaseException] = []

    def send(lane: int) -> None:
        mine = [(i, f) for i, f in enumerate(flow_ids) if i % THREADS == lane]
        try:
            for k in range(PER_FLOW):  # round after round: flows are resumed again and again
                for i, flow_id in mine:
                    n = i * PER_FLOW + k
                    if i % 2:
                        handle.signal(flow_id, "tick", {"n": n}, signal_id=f"s{n}")
                    else:
                        signal_flow(flow_id, "tick", {"n": n}, signal_id=f"s{n}", crux=db2_app.crux)
                    sent[flow_id].append(n)
                    if n % 50 == 3:  # a client retrying: the same signal_id again
                        handle.signal(flow_id, "tick", {"n": n}, signal_id=f"s{n}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(lane,)) for lane in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    sent_in = time.monotonic() - started

    left = set(flow_ids)
    deadline = time.monotonic() + 180
    while left:
        left = {f for f in left if handle.status(f).status != "completed"}
        assert time.monotonic() < deadline, (len(left), db2_worker.log()[-3000:])
        time.sleep(0.5)
    done_in = time.monotonic() - started
    worker_cpu, sender_cpu = _cpu_s(db2_worker.process.pid) - worker_cpu, time.process_time() - sender_cpu

    delivered: Counter[int] = Counter()
    out_of_order = misdelivered = 0
    for flow_id in flow_ids:
        result = handle.result(flow_id)
        assert result is not None and result.status == "completed", (flow_id, result)
        got = list(result.output)
        delivered.update(got)
        out_of_order += got != sent[flow_id]
        misdelivered += len(set(got) - set(sent[flow_id]))
    total = FLOWS * PER_FLOW
    duplicates = sum(count - 1 for count in delivered.values() if count > 1)
    received = sum(1 for n in range(total) if delivered[n] >= 1)
    print(f"\nsignals delivered {received:,} of {total:,}, duplicates {duplicates}, to the wrong flow "
          f"{misdelivered}, out of order {out_of_order} flows ({total // 50:,} retried signal_ids stored nothing); "
          f"sent in {sent_in:.1f} s, all {FLOWS:,} flows completed {done_in:.1f} s after the first start "
          f"(CPU: the sending process {sender_cpu:.0f} s, the worker {worker_cpu:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f})")
    assert received == total and duplicates == 0 and misdelivered == 0
    assert out_of_order == 0, "a flow takes its buffered signals oldest first"
    store = db2_app.crux.flows.store
    leftovers = sum(store.signals.pending_count(f, "tick") for f in flow_ids)
    assert leftovers == 0, f"{leftovers} signals left pending"
