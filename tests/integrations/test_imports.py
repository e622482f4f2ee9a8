"""The library imports no web framework: only ``cruxcelery.integrations.flask`` / ``.django`` do.
Checked with flask and django made unimportable (kombu probes django on its own and copes)."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('flask', 'django', 'werkzeug'):
            raise ImportError(f'{name} is blocked')
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "CRUX_REDIS_URL": "redis://127.0.0.1:6379/6"})


def test_the_library_and_the_demo_app_work_without_flask_and_django() -> None:
    out = _run("import cruxcelery, cruxcelery.cli.main, cruxcelery.cli.demo, cruxcelery.integrations, "
               "cruxcelery.integrations.web.common, cruxcelery.examples.flows.writer, cruxcelery.examples.demo\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'django', 'werkzeug')))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_integrations_say_which_extra_they_need() -> None:
    for framework in ("flask", "django"):
        out = _run(f"import cruxcelery.integrations.{framework}")
        assert out.returncode != 0 and f"pip install 'cruxcelery[{framework}]'" in out.stderr
