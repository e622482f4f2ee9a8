"""``python -m tests.faults.soak --seed N --minutes M``: the nemesis. Runs batches of scenarios,
each with a random fault from the enumerated set (or none), while killing the worker (the
supervisor restarts it) and restarting Redis (AOF, fsync always) at random moments, and checks the
invariants of every scenario. The schedule (faults, nemesis moments) comes from the seed alone: a
failing seed replays the same schedule. Exit status 1 when any scenario broke an invariant."""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=4)
    options = parser.parse_args()

    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", aof=True)
        server.start()
        os.environ["CRUX_FAULTS_REDIS"] = f"redis://127.0.0.1:{server.port}/13"
        from tests.faults.harness import Harness, random_schedule

        rng = random.Random(options.seed)
        harness = Harness(Path(tmp))
        deadline = time.monotonic() + options.minutes * 60
        scenarios = failures = 0
        try:
            with harness.worker() as supervised:
                while time.monotonic() < deadline:
                    faults = random_schedule(rng, options.batch)
                    nemesis = rng.choice(["none", "none", "kill-worker", "restart-redis"])
                    delay_s = rng.uniform(0.2, 3.0)
                    timer = threading.Timer(delay_s, _nemesis, (nemesis, supervised, server))
                    timer.start()
                    outcomes = harness.run(faults, parallel=options.batch)
                    timer.join()
                    for outcome in outcomes:
                        scenarios += 1
                        if outcome.problems:
                            failures += 1
                            name = outcome.fault.name if outcome.fault else "no fault"
                            print(f"FAIL seed={options.seed} {name} + {nemesis}@{delay_s:.1f}s "
                                  f"[{outcome.flow_id}]: {outcome.problems}", flush=True)
        finally:
            server.stop()
    print(f"soak seed={options.seed}: {scenarios} scenarios, {failures} broke an invariant")
    return 1 if failures else 0


def _nemesis(kind: str, supervised: object, server: object) -> None:
    if kind == "kill-worker":
        supervised.current.kill()  # type: ignore[attr-defined]
    elif kind == "restart-redis":
        server.restart(down_s=0.5)  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
