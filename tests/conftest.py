"""Shared fixtures: a real Redis (required), the test Celery app, and an in-thread worker."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest


def _redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _busy_cores() -> Iterator[None]:
    """``CRUX_TEST_BUSY=N``: N processes spinning on a core for the whole run (``make test-busy``):
    CI machines and laptops are never idle, and a suite that passes only on a quiet one hides races."""
    import subprocess
    import sys

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(int(os.environ.get("CRUX_TEST_BUSY", "0") or 0))]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.fixture(scope="session", autouse=True)
def _require_redis() -> None:
    if not _redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis is not answering on 127.0.0.1:6379 (.ci/run starts one)")
        pytest.skip("Redis is not answering on 127.0.0.1:6379")


@pytest.fixture(scope="session")
def celery_test_app() -> Any:
    from tests import app as test_app

    return test_app


class _SessionWorker:
    """The suite's in-thread worker. Celery's ``start_worker`` stops an in-thread worker by setting
    the process-wide ``state.should_terminate``, so a test that starts and stops a worker of its own
    stops this one too: it is started again before the next test that needs it (a stopped one is
    kept referenced until the session ends: finalising its context would stop every worker again)."""

    def __init__(self, test_app: Any) -> None:
        self.test_app = test_app
        self.running: Any = None
        self._thread: threading.Thread | None = None  # the worker's thread: dead once it was stopped
        self._contexts: list[Any] = []

    def ensure(self) -> Any:
        from celery import bootsteps
        from celery.contrib.testing.worker import start_worker

        if self.running is not None and self.running.blueprint.state == bootsteps.RUN \
                and self._thread is not None and self._thread.is_alive():
            return self.running
        before = set(threading.enumerate())
        context = start_worker(self.test_app.app, pool="solo", concurrency=1, perform_ping_check=False,
                               loglevel="WARNING", shutdown_timeout=10.0)
        self._contexts.append(context)
        self.running = context.__enter__()
        started = [t for t in threading.enumerate() if t not in before and t.daemon]
        self._thread = started[0] if started else None
        return self.running

    def stop(self) -> None:
        """At the end of the session: every context is finalised (the live worker's first)."""
        for context in reversed(self._contexts):
            context.__exit__(None, None, None)
        self._contexts.clear()


_SESSION_WORKER: list[_SessionWorker] = []


@pytest.fixture(scope="session")
def _session_worker(celery_test_app: Any) -> Iterator[_SessionWorker]:
    app = celery_test_app.app
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(celery_test_app.QUEUE)
    session = _SessionWorker(celery_test_app)
    _SESSION_WORKER.append(session)
    yield session
    session.stop()


@pytest.fixture()
def worker(_session_worker: _SessionWorker) -> Any:
    """A real Celery worker in a thread (solo pool), consuming the test queue."""
    return _session_worker.ensure()


@pytest.fixture()
def sink(celery_test_app: Any, worker: Any) -> Any:
    """The in-memory record sink, emptied for the test (``_every_record_is_valid`` checks it)."""
    sink = celery_test_app.SINK
    assert not sink.invalid, f"records failed the v5 models: {sink.invalid[:3]}"
    sink.clear()
    return sink


@pytest.fixture(autouse=True)
def _no_worker_is_told_to_stop() -> None:
    """A test's in-thread worker that failed to stop in time leaves Celery's process-wide
    ``state.should_terminate`` set, which stops every in-thread worker started after it."""
    from celery.worker import state

    state.should_terminate = None


@pytest.fixture(autouse=True)
def _the_test_app_is_current() -> None:
    """Other app modules (the crash, chaos and split-deployment apps their workers run) build a
    ``Crux`` too when a test imports them: module-level calls here mean the test app's."""
    import sys

    test_app = sys.modules.get("tests.app")
    if test_app is not None:
        test_app.crux.make_current()


@pytest.fixture()
def make_crux() -> Iterator[Any]:
    """Build a throwaway ``Crux`` for one test; it is closed after it, so it never stays the
    process's ``current()`` runtime."""
    from cruxcelery import Crux

    made: list[Any] = []

    def make(app: Any, settings: Any = None) -> Any:
        made.append(Crux(app, settings))
        return made[-1]

    yield make
    for crux in made:
        crux.close()


@pytest.fixture(autouse=True)
def _every_record_is_valid() -> Iterator[None]:
    """Every record any test makes the in-thread worker emit must validate against the v5 models
    (the in-memory sink checks each one on arrival)."""
    import sys

    yield
    test_app = sys.modules.get("tests.app")
    if test_app is not None:
        invalid = list(test_app.SINK.invalid)
        test_app.SINK.invalid.clear()
        assert not invalid, f"records failed the v5 models: {invalid[:3]}"
