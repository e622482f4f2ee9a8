"""``python -m bench.profile``: where one no-op crux action's time goes, in a prefork pool child.

A worker (``-P prefork -c 1``) runs ``bench.action`` (and ``bench.plain_late`` for comparison) with
pyinstrument sampling its pool child every 0.1 ms; at the child's exit the inclusive time of the
phases below is divided by the number of tasks. Telemetry goes to the spool and a forwarder thread
(``CRUX_SPOOL=on``; ``--http`` for the in-process HTTP queue) delivering to the test receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PHASES = {  # (function, file suffix) -> label; inclusive time, outermost frame only
    ("trace_task", "celery/app/trace.py"): "celery trace_task (whole execution)",
    ("run", "cruxcelery/core/actions.py"): "  CruxTask.run",
    ("open_execution", "cruxcelery/core/execution.py"): "    open_execution (run:start, span:start, OTel)",
    ("_call", "cruxcelery/core/actions.py"): "    _call (args validation, body, to_wire)",
    ("close_execution", "cruxcelery/core/execution.py"): "    close_execution (span:end, run:end)",
    ("flush", "cruxcelery/core/runtime.py"): "    Runtime.flush",
    ("emit", "cruxcelery/telemetry/recorder.py"): "    (of which Recorder.emit: exporters)",
    ("json_safe", "cruxcelery/telemetry/preview.py"): "    (of which json_safe previews)",
    ("on_prerun", "cruxcelery/core/hooks.py"): "  hooks.on_prerun (extensions)",
    ("on_postrun", "cruxcelery/core/hooks.py"): "  hooks.on_postrun (extensions)",
    ("mark_as_done", "celery/backends/base.py"): "  result backend: store the result",
    ("_trace_task_ret", "celery/app/trace.py"): "pool: _trace_task_ret",
}


def save(profiler: Any, path: str) -> None:
    profiler.stop()
    session = profiler.last_session
    totals: dict[str, float] = dict.fromkeys(PHASES.values(), 0.0)
    counts = {"tasks": 0}

    def walk(frame: Any, active: frozenset[str]) -> None:
        label = None
        for (function, suffix), name in PHASES.items():
            if frame.function == function and (frame.file_path or "").endswith(suffix):
                label = name
        if label is not None and label not in active:
            totals[label] += frame.time
            if label.startswith("celery trace_task"):
                counts["tasks"] += 1  # frames are merged per call site: corrected below
            active = active | {label}
        for child in frame.children:
            walk(child, active)

    root = session.root_frame()
    if root is not None:
        walk(root, frozenset())
    with open(path, "w") as out:
        json.dump({"totals": totals, "duration": session.duration, "cpu": session.cpu_time}, out)


def run(tasks: int, http: bool) -> None:
    from bench import app as bench_app
    from bench.receiver import receiver_process
    from cruxcelery.cli.demo import worker

    with bench_app.app.connection_for_write() as conn:
        conn.default_channel.client.delete(bench_app.QUEUE)
    with receiver_process() as (url, counts), tempfile.TemporaryDirectory(prefix="crux-profile-") as tmp:
        out = Path(tmp) / "profile.json"
        env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_DEVTOOLS_URL": url, "CRUX_BENCH_PROFILE": str(out),
               "CRUX_SPOOL": "off" if http else "on"}
        with worker("bench.app", env, Path(tmp) / "worker.log", options=("-P", "prefork", "-c", "1"),
                    name="profile"):
            started = time.perf_counter()
            for result in [bench_app.action.delay({"n": i}) for i in range(tasks)]:
                result.get(timeout=120)
            print(f"crux actions under the profiler: {tasks / (time.perf_counter() - started):.0f}/s")
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        data = json.loads(out.read_text())
    totals = data["totals"]
    print(f"pool child: {data['duration']:.2f} s wall, {data['cpu']:.2f} s CPU for {tasks} no-op crux actions; "
          f"per action, inclusive:")
    actions = tasks
    for label, seconds in totals.items():
        per = seconds / actions * 1e6
        print(f"  {label:<52} {per:8.1f} us")
    print(f"receiver: {counts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="no spool: the in-process HTTP queue")
    options = parser.parse_args()
    os.environ.setdefault("CRUX_BENCH_QUEUE", f"crux-profile-{os.getpid()}")
    run(options.tasks, options.http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
