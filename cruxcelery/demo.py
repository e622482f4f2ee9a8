"""``cruxcelery demo``: the reference app end to end through a real prefork worker.

Starts an embedded Redis unless ``CRUX_REDIS_URL`` / ``REDIS_URL`` is set, starts
``celery -A tasks worker``, runs ``research.plan`` by name, waits for its records and prints the
run tree. It never imports the reference app: it talks to it through Redis like any client."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from celery import Celery

from cruxcelery.embedded import EmbeddedRedis
from cruxcelery.telemetry.tree import render
from cruxcelery.testing import read_jsonl


def redis_url(stack: ExitStack) -> str:
    configured = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured:
        return configured
    embedded = stack.enter_context(EmbeddedRedis())
    print(f"(no CRUX_REDIS_URL: started an embedded Redis at {embedded.url})")
    return embedded.url


@contextmanager
def worker(
    app_module: str, url: str, records_file: Path, log_file: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CRUX_REDIS_URL": url, "CRUX_RECORDS_FILE": str(records_file)}
    command = [sys.executable, "-m", "celery", "-A", app_module, "worker", "-P", "prefork", "-c", "2",
               "-l", "INFO", "-E", "--without-gossip", "--without-mingle", "-n", "demo@%h"]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log_file.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the demo worker did not start:\n" + log_file.read_text()[-3000:])
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # warm shutdown: the shutdown hooks flush what is left
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_quiet(records_file: Path, settle_s: float = 1.0, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Records, once every started span has ended and nothing new arrived for ``settle_s``."""
    deadline = time.monotonic() + timeout_s
    last: list[dict[str, Any]] = []
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        records = read_jsonl(str(records_file))
        if len(records) != len(last):
            last, stable_since = records, time.monotonic()
        started = {r["spanId"] for r in records if r["type"] == "span:start"}
        ended = {r["spanId"] for r in records if r["type"] == "span:end"}
        if records and started <= ended and time.monotonic() - stable_since >= settle_s:
            break
        time.sleep(0.1)
    return last


def run(app_module: str = "tasks") -> int:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="crux-demo-") as tmp:
        url = redis_url(stack)
        records_file, log_file = Path(tmp) / "records.jsonl", Path(tmp) / "worker.log"
        with worker(app_module, url, records_file, log_file):
            client = Celery("demo-client", broker=url, backend=url)
            client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
            started = time.monotonic()
            result = client.send_task("research.plan", kwargs={"thread_id": "demo-thread"})
            plan = result.get(timeout=60)
            print(f"research.plan returned in {(time.monotonic() - started) * 1000:.0f} ms: {plan}")
            records = wait_quiet(records_file)
        print()
        print(render(records))
        runs = {r["runId"] for r in records}
        print(f"\n{len(records)} records in {len(runs)} runs")
        failed = [r for r in records if r["type"] == "span:event" and r["name"].endswith("boundary.failed")]
        ok = plan.get("sources") == 3 and len(runs) == 2 and len(failed) == 1
        print("demo: ok" if ok else "demo: UNEXPECTED RESULT")
        return 0 if ok else 1
