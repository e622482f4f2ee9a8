"""``cruxcelery dev``: the command line, run as users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.devtools.helpers import RunBuilder, post, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cruxcelery_dev_serves_ingest_and_keeps_records_in_its_file(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "dev.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "cruxcelery.cli", "dev", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/api/health").status_code == 200
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                return False

        wait_for(healthy, timeout_s=30)
        run = RunBuilder("plan research")
        with httpx.Client(base_url=url) as client:
            assert post(client, [run.start()]).status_code == 202
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert process.returncode in (0, -15), output
    assert f"CRUX_DEVTOOLS_URL=http://localhost:{port}" in output
    assert db.exists()


def test_cruxcelery_dev_refuses_a_public_interface_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CRUX_DEVTOOLS_TOKEN"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cruxcelery.cli", "dev", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2 and "CRUX_DEVTOOLS_TOKEN" in result.stdout
    assert time.monotonic() - started < 60
