"""The integrations import without their client libraries: only calling ``instrument_litellm``
needs LiteLLM (and says which extra to install); the clients are never imported by cruxcelery."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('openai', 'anthropic', 'litellm'):
            raise ImportError(f'{name} is blocked')
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def test_the_llm_integrations_import_without_the_client_libraries() -> None:
    out = _run("import cruxcelery, cruxcelery.integrations.openai, cruxcelery.integrations.anthropic, "
               "cruxcelery.integrations.litellm, cruxcelery.integrations.llm.common\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic', 'litellm')))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_instrument_litellm_without_litellm_names_the_extra() -> None:
    out = _run("from cruxcelery.integrations.litellm import instrument_litellm\ninstrument_litellm()")
    assert out.returncode != 0 and "pip install 'cruxcelery[litellm]'" in out.stderr


def test_the_library_itself_imports_no_client() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, cruxcelery, cruxcelery.integrations.openai, "
                          "cruxcelery.integrations.anthropic, cruxcelery.integrations.litellm\n"
                          "print(sorted(m for m in sys.modules if m in ('openai', 'anthropic', 'litellm')))"],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
