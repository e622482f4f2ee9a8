"""``python -m tests.faults.record_points``: add the points a fault-free run reaches to points.txt
(points listed already keep their line: some are reached only now and then, or only while
recovering)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.faults.harness import POINTS_FILE, Harness

HEADER = """# The fault points of the flows package: owner (flow: the call names the flow's id; *: it names
# none), point (file:function COMMAND) and, for a point only recovery reaches, `recovery`.
# `make fault-points` adds what a fault-free run reaches; the full sweep (`make faults`) fails on a
# point it reached that is not listed; tests/faults/test_points.py on one a fault-free run reached.
"""

if __name__ == "__main__":
    lines = {tuple(line.split("\t")[:2]): line for line in POINTS_FILE.read_text().splitlines()
             if line and not line.startswith("#")}
    with tempfile.TemporaryDirectory() as tmp:
        for owner, point in Harness(Path(tmp)).record_points():
            lines.setdefault((owner, point), f"{owner}\t{point}")
    POINTS_FILE.write_text(HEADER + "".join(f"{lines[key]}\n" for key in sorted(lines)))
    print(f"{len(lines)} points in {POINTS_FILE}")
