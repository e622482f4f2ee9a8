"""``python -m tests.faults.record_points``: rewrite points.txt from a fault-free run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.faults.harness import POINTS_FILE, Harness, load_points

HEADER = """# The fault points of the flows package: owner (flow: the call names the flow's id; *: it names
# none) and point (file:function COMMAND). Written by `make fault-points`; tests/faults/test_points.py
# fails when the code reaches a point not listed here.
"""

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        points = sorted(set(Harness(Path(tmp)).record_points()) | set(load_points()))  # some come and go
    POINTS_FILE.write_text(HEADER + "".join(f"{owner}\t{point}\n" for owner, point in points))
    print(f"{len(points)} points written to {POINTS_FILE}")
