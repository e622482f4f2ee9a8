"""``cruxcelery demo``: an app's demo scenario end to end through a real prefork worker.

Starts an embedded Redis unless ``CRUX_REDIS_URL`` / ``REDIS_URL`` is set, starts
``celery -A <app> worker`` writing records to a file, runs ``<app>.demo.scenario()`` in this
process, then prints the run tree. The library never imports the app: it loads the scenario
module by name."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cruxcelery.cli.embedded_redis import EmbeddedRedis
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
def worker(app_module: str, env: dict[str, str], log_file: Path,
           options: tuple[str, ...] = ("-P", "prefork", "-c", "2", "-E"), name: str = "demo"
           ) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A app_module worker`` in a subprocess, until the block ends (warm shutdown)."""
    command = [sys.executable, "-m", "celery", "-A", app_module, "worker", *options, "-l", "INFO",
               "--without-gossip", "--without-mingle", "-n", f"{name}@%h"]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
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


EXAMPLES_APP = "cruxcelery.examples"


def default_app() -> str:
    """``tasks`` when the working directory holds the repository's reference app (it has a
    ``tasks/demo.py``), else the demo app shipped with the package. Imports nothing."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `celery -A`: the app lives in the working dir
    try:
        spec = importlib.util.find_spec("tasks")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return "tasks" if any((Path(p) / "demo.py").is_file() for p in locations) else EXAMPLES_APP


def run(app_module: str | None = None) -> int:
    app_module = app_module or default_app()
    print(f"cruxcelery demo: the app {app_module}")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="crux-demo-") as tmp:
        url = redis_url(stack)
        records_file, log_file = Path(tmp) / "records.jsonl", Path(tmp) / "worker.log"
        env = {"CRUX_REDIS_URL": url, "CRUX_RECORDS_FILE": str(records_file)}
        os.environ["CRUX_REDIS_URL"] = url  # the scenario's client side builds the same app
        with worker(app_module, env, log_file):
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # like `celery -A`: the app lives in the working dir
            scenario = importlib.import_module(f"{app_module}.demo")
            ok = bool(scenario.scenario())
            records = wait_quiet(records_file)
        print()
        print(render(records))
        print(f"\n{len(records)} records in {len({r['runId'] for r in records})} runs")
        print("demo: ok" if ok else "demo: UNEXPECTED RESULT")
        return 0 if ok else 1
