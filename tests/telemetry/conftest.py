"""Fixtures for the telemetry tests: a real ingest receiver. No Redis or Celery needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.receiver import Receiver, free_port


@pytest.fixture(scope="session", autouse=True)
def _require_redis() -> None:
    """Telemetry delivery needs no Redis: overrides the suite-wide autouse check."""


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A started receiver that accepts everything until told otherwise."""
    with Receiver() as running:
        yield running


@pytest.fixture()
def down_url() -> str:
    """The base URL of a receiver that is down (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
