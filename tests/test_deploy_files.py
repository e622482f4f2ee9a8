"""docker-compose.yml and the Procfile: the same processes (redis, worker with task events,
flower, devtools, the Flask example), with commands that point at real modules and options."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP = "examples.flask_app.worker"
WEB_APP = "examples.flask_app.app:create_app"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return list(command) if isinstance(command, list) else shlex.split(command)


def _procfile() -> dict[str, list[str]]:
    processes: dict[str, list[str]] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            assert name.strip() not in processes, f"{name} twice in the Procfile"
            processes[name.strip()] = shlex.split(command)
    return processes


def _published(service: dict[str, Any]) -> set[int]:
    """Container ports published on the host."""
    return {int(str(port).rsplit(":", 1)[-1].split("/")[0]) for port in service.get("ports", [])}


def _option(command: list[str], name: str) -> str | None:
    for index, part in enumerate(command):
        if part == name and index + 1 < len(command):
            return command[index + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return None


def test_compose_runs_redis_worker_flower_devtools_and_web() -> None:
    services = _services()
    assert {"redis", "worker", "flower", "devtools", "web"} <= set(services)
    assert set(services) - {"redis", "worker", "flower", "devtools", "web"} <= {"install"}
    assert services["redis"]["image"].startswith("redis:")

    worker = _command(services["worker"])
    assert worker[:4] == ["celery", "-A", APP, "worker"]
    assert "-E" in worker, "workers must send task events (Flower)"
    assert _option(worker, "-P") == "prefork"

    flower = _command(services["flower"])
    assert flower[:4] == ["celery", "-A", APP, "flower"] and _option(flower, "--port") == "5555"
    assert 5555 in _published(services["flower"])
    environment = services["flower"]["environment"]
    assert environment.get("FLOWER_UNAUTHENTICATED_API") == "true" or "FLOWER_BASIC_AUTH" in environment

    devtools = _command(services["devtools"])
    assert devtools[:2] == ["cruxcelery", "dev"] and _option(devtools, "--host") == "0.0.0.0"
    assert _option(devtools, "--port") == "4400" and 4400 in _published(services["devtools"])
    assert services["devtools"]["environment"]["CRUX_DEVTOOLS_TOKEN"], "beyond loopback devtools needs a token"

    web = _command(services["web"])
    assert web[:4] == ["flask", "--app", WEB_APP, "run"] and _option(web, "--port") == "5000"
    assert 5000 in _published(services["web"])


def test_every_app_service_shares_the_redis_and_waits_for_it() -> None:
    services = _services()
    for name in ("worker", "flower", "devtools", "web"):
        service = services[name]
        assert service["environment"]["CRUX_REDIS_URL"].startswith("redis://redis:6379/"), name
        assert service["environment"]["CRUX_DEVTOOLS_URL"] == "http://devtools:4400", name
        assert "redis" in service["depends_on"], name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_procfile_runs_the_same_processes() -> None:
    procfile, services = _procfile(), _services()
    assert set(procfile) == {"web", "worker", "flower", "devtools"}
    for name, command in procfile.items():
        assert command[:4] == _command(services[name])[:4], name
    assert "-E" in procfile["worker"] and _option(procfile["worker"], "-P") == "prefork"
    assert _option(procfile["devtools"], "--host") == "0.0.0.0"
    assert _option(procfile["web"], "--port") == "${PORT:-5000}"  # Heroku-style runners set PORT


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CRUX_REDIS_URL": "redis://127.0.0.1:6379/6"}


def test_the_commands_load_the_apps_they_name(env: dict[str, str]) -> None:
    report = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "report"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "result_backend: 'redis://127.0.0.1:6379/6'" in report.stdout  # the example's config was read
    routes = subprocess.run([sys.executable, "-m", "flask", "--app", WEB_APP, "routes"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert routes.returncode == 0, routes.stderr[-3000:]
    for route in ("/drafts/<draft_id>/writer", "/flows/<flow_id>/approval", "/flows/<flow_id>"):
        assert route in routes.stdout
    dev = subprocess.run([sys.executable, "-m", "cruxcelery.cli", "dev", "--help"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert dev.returncode == 0 and all(option in dev.stdout for option in ("--host", "--port", "--db", "--redis"))
