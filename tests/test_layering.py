"""Dependencies point one way (DESIGN.md section 3): the runtime never imports flows (they plug in
through the extension seam), telemetry knows no Celery, flows, settings or runtime, and no module
is a god module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cruxcelery"
RUNTIME = ["runtime", "hooks", "actions", "execution", "boundaries", "scheduling", "publishing", "extensions",
           "outcomes", "context", "envelope", "flushing", "settings", "args", "errors"]


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_runtime_imports_no_flow_module():
    for name in RUNTIME:
        imported = imports_of(PACKAGE / f"{name}.py")
        assert not {m for m in imported if m.startswith(("cruxcelery.flows", "cruxcelery.crux"))}, name


def test_no_module_imports_another_modules_private_names():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cruxcelery"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, f"{path.relative_to(PACKAGE)} imports {private} from {node.module}"


def test_no_module_is_over_about_400_lines():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}
