"""The CLI tests: ``cruxcelery.cli.main.main`` in-process against ``tests.cli.cli_app`` (Redis database 4,
flushed before and after each test), and an in-thread worker for flows that must run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.cli import cli_app

APP = "tests.cli.cli_app"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("flows", "list")`` runs ``cruxcelery flows list --app tests.cli.cli_app`` in-process."""
    from cruxcelery.cli.main import main

    def call(*args: str, app: str | None = APP) -> Result:
        capsys.readouterr()
        argv = [*args, "--app", app] if app else list(args)
        code = main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def _flush(everything: bool = False) -> None:
    """Empty database 4, but for the broadcast bindings of a running worker (``_kombu.*``) unless
    ``everything``."""
    client = redis.Redis.from_url(cli_app.REDIS)
    try:
        if everything:
            client.flushdb()
        else:
            for key in client.scan_iter(count=500):
                if not key.startswith(b"_kombu."):
                    client.delete(key)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def clean_db() -> Iterator[None]:
    """Database 4 belongs to these tests: emptied before and after each one."""
    _flush()
    cli_app.FAILING.clear()
    cli_app.PLANNED.clear()
    yield
    _flush()


@pytest.fixture(scope="module")
def cli_worker() -> Iterator[Any]:
    """A real worker in a thread (solo pool) consuming the CLI app's queue."""
    from celery.contrib.testing.worker import start_worker

    _flush(everything=True)
    with start_worker(cli_app.app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=10.0) as running:
        yield running
    _flush(everything=True)
