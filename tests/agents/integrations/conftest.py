"""Fixtures of the LLM client integration tests: the local wire-format server, the test app
(Redis database 3, flushed when the suite starts) with a real in-thread worker, its record sink,
and OpenTelemetry's in-memory exporter on the process's SDK provider."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must not fetch its price list


@pytest.fixture(scope="package")  # one per package, like the worker below
def llm_server() -> Iterator[Any]:
    from tests.agents.llm_server import LLMServer

    server = LLMServer(stall_s=20.0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llm_app() -> Any:
    from tests.agents.integrations import llm_app

    return llm_app


@pytest.fixture(scope="package")  # stopped before other suites run: in-thread workers share a stop flag
def llm_worker(llm_app: Any) -> Iterator[Any]:
    """A real Celery worker in a thread (solo pool) consuming the test app's queue."""
    from celery.contrib.testing.worker import start_worker

    client = redis.Redis.from_url(llm_app.REDIS)
    client.flushdb()
    with start_worker(llm_app.app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=10.0) as running:
        yield running
    client.flushdb()
    client.close()


@pytest.fixture()
def llm_records(llm_app: Any, llm_worker: Any, llm_server: Any) -> Any:
    """The app's in-memory sink, emptied for the test (and the server's request log)."""
    llm_app.crux.make_current()
    llm_app.SINK.clear()
    llm_server.clear()
    return llm_app.SINK


@pytest.fixture()
def with_content(llm_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's runtime with ``CRUX_RECORD_CONTENT=true`` for the test."""
    monkeypatch.setattr(llm_app.crux, "settings", llm_app.crux.settings.model_copy(update={"record_content": True}))


@pytest.fixture(autouse=True)
def _llm_records_are_valid() -> Iterator[None]:
    """Every record the test app emits must validate against the v5 models."""
    yield
    module = sys.modules.get("tests.agents.integrations.llm_app")
    if module is not None:
        invalid = list(module.SINK.invalid)
        module.SINK.invalid.clear()
        assert not invalid, f"records failed the v5 models: {invalid[:3]}"
