"""Every test the docs cite as proof exists: docs/security.md names a test per guarantee, and
docs/flows.md per crash window (``tests/x.py::test_name``, or ``::test_name`` after a file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"`(tests/[\w/]+\.py)?(::\w+)?`")


def _citations(doc: str) -> list[tuple[str, str | None]]:
    found, last = [], None
    for match in CITATION.finditer((ROOT / doc).read_text()):
        path, name = match.group(1), match.group(2)
        last = path or last
        if last is not None and (path or name):
            found.append((last, name[2:] if name else None))
    return found


@pytest.mark.parametrize("doc", ["docs/security.md", "docs/flows.md"])
def test_every_test_a_doc_cites_exists(doc):
    missing = [f"{path}::{name}" if name else path for path, name in _citations(doc)
               if not (ROOT / path).exists() or (name and f"def {name}(" not in (ROOT / path).read_text())]
    assert missing == []
