"""From a fresh virtualenv: ``pip install`` the repository (not editable, dependencies from the
package index at the versions ``requirements/constraints.txt`` records, as ``make`` installs), then
``cruxcelery --version`` and ``cruxcelery demo`` outside any checkout: once with no Redis
configured (the demo starts its embedded one; it never falls back to 6379 on its own), once against
the machine's Redis (db 6, whatever the demo created is deleted)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
MACHINE_REDIS = "redis://127.0.0.1:6379/6"
pytestmark = pytest.mark.subprocess


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point at the checkout or a Redis."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("CRUX_", "CELERY_"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the repository installed from a copy of its sources (a build in the
    checkout itself would leave build/ behind in it)."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("cruxcelery", "tasks", "flows"):  # the wheel ships tasks/ and flows/ as cruxcelery.examples
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "-c", str(CONSTRAINTS), str(source)],
                         capture_output=True, text=True, timeout=480, env=_clean_env())
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return venv


def test_the_wheel_ships_the_reference_app_itself_as_cruxcelery_examples(installed: Path) -> None:
    shipped = next(installed.glob("lib/python*/site-packages/cruxcelery/examples"))
    for source, target in ((ROOT / "tasks", shipped), (ROOT / "flows", shipped / "flows")):
        for module in source.glob("*.py"):
            assert (target / module.name).read_bytes() == module.read_bytes(), module
    assert {p.name for p in shipped.glob("*.py")} == {p.name for p in (ROOT / "tasks").glob("*.py")}


def _cruxcelery(venv: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "cruxcelery"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=150)


@pytest.mark.timeout(600)
def test_pip_install_then_version_and_demo_work_outside_a_checkout(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no tasks/ here: the demo must use the app the package ships
    elsewhere.mkdir()
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import cruxcelery; print(cruxcelery.__file__)"],
                           cwd=elsewhere, env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and str(installed) in where.stdout, where.stdout + where.stderr

    version = _cruxcelery(installed, "--version", cwd=elsewhere, env=_clean_env())
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.returncode == 0 and version.stdout.strip() == f"cruxcelery {expected}", version

    embedded = _cruxcelery(installed, "demo", cwd=elsewhere, env=_clean_env())
    output = embedded.stdout + embedded.stderr
    assert embedded.returncode == 0, output[-4000:]
    assert "the app cruxcelery.examples" in output
    started = re.search(r"started an embedded Redis at redis://127\.0\.0\.1:(\d+)/0", output)
    assert started and started.group(1) != "6379", output[-4000:]
    assert "writer finished completed" in output and "demo: ok" in output
    assert "plan research" in output and "rank citations" in output  # the run tree is printed

    conn = redis.Redis.from_url(MACHINE_REDIS)
    before = set(conn.scan_iter(count=1000))
    try:
        machine = _cruxcelery(installed, "demo", cwd=elsewhere, env=_clean_env(CRUX_REDIS_URL=MACHINE_REDIS))
        output = machine.stdout + machine.stderr
        assert machine.returncode == 0, output[-4000:]
        assert "embedded" not in output and "demo: ok" in output
    finally:
        created = set(conn.scan_iter(count=1000)) - before
        if created:
            conn.delete(*created)
        conn.close()
