"""Fixtures for the devtools tests: a real devtools server (uvicorn, a free port on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer


@pytest.fixture(scope="session", autouse=True)
def _require_redis() -> None:
    """Devtools needs no Redis: overrides the suite-wide autouse check."""


@pytest.fixture()
def devtools() -> Iterator[DevtoolsServer]:
    """A started devtools server with an in-memory database, stopped after the test."""
    with DevtoolsServer(DevtoolsConfig(db=":memory:")) as server:
        yield server


@pytest.fixture()
def api(devtools: DevtoolsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=devtools.url, timeout=10.0) as client:
        yield client
