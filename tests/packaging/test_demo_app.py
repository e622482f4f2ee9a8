"""Which app ``cruxcelery demo`` runs: the checkout's ``tasks`` from the repository root, the
package's ``cruxcelery.examples`` anywhere else (decided without importing either)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ("import sys; from cruxcelery.cli.demo import default_app; app = default_app(); "
        "print(app, 'tasks' in sys.modules, 'cruxcelery.examples' in sys.modules)")


def _default_app(cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=cwd, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_checkout_runs_its_reference_app(tmp_path: Path) -> None:
    assert _default_app(ROOT) == "tasks False False"


def test_anywhere_else_runs_the_app_the_package_ships(tmp_path: Path) -> None:
    assert _default_app(tmp_path) == "cruxcelery.examples False False"
    (tmp_path / "tasks").mkdir()  # a `tasks` package without a demo scenario is not the reference app
    (tmp_path / "tasks" / "__init__.py").write_text("raise SystemExit('imported')\n")
    assert _default_app(tmp_path) == "cruxcelery.examples False False"
