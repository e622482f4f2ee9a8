"""Fixtures for the agent tests: the agents test app (Redis db 15) and an in-thread worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def agents_app() -> Any:
    from tests.agents import app

    return app


@pytest.fixture(scope="package")  # stopped before other suites run: in-thread workers share a stop flag
def agents_worker(agents_app: Any) -> Iterator[Any]:
    """A real Celery worker in a thread (solo pool) for the agents app."""
    from celery.contrib.testing.worker import start_worker

    app = agents_app.app
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(agents_app.QUEUE)
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=10.0) as running:
        yield running


@pytest.fixture()
def records(agents_app: Any, agents_worker: Any) -> Any:
    """The agents app's in-memory sink, emptied for the test."""
    sink = agents_app.SINK
    sink.clear()
    return sink


@pytest.fixture(autouse=True)
def _agent_records_are_valid() -> Iterator[None]:
    """Every record the agents app emits must validate against the v5 models."""
    import sys

    yield
    module = sys.modules.get("tests.agents.app")
    if module is not None:
        invalid = list(module.SINK.invalid)
        module.SINK.invalid.clear()
        assert not invalid, f"records failed the v5 models: {invalid[:3]}"
