"""Dependencies point one way (docs/architecture.md, "Layers"): the reference app -> the public names
(``crux.py``) -> plug-ins (flows, agents, delivery, integrations) -> the core -> telemetry. Imports
inside functions count (a cycle hidden in a function is still a cycle); imports under
``TYPE_CHECKING`` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cruxcelery"
PLUG_INS = ("cruxcelery.flows", "cruxcelery.agents", "cruxcelery.delivery", "cruxcelery.integrations.llm")
# faces (the CLI, the web integrations, cruxcelery.testing) stand beside the public names and may use them


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(inner) for inner in ast.walk(node))
    return hidden


def _resolve(name: str) -> str | None:
    """The module an imported name lives in (a name imported from a package is that package)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The package's modules ``module`` imports when it runs, wherever the import statement is."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    hidden = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        found.update(t for n in names if (t := _resolve(n)) is not None and t != module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_core_imports_only_telemetry_errors_and_settings():
    allowed = ("cruxcelery.core", "cruxcelery.telemetry", "cruxcelery.errors", "cruxcelery.settings")
    for module, imported in GRAPH.items():
        if _in(module, "cruxcelery.core"):
            assert {m for m in imported if not _in(m, *allowed)} == set(), module


def test_telemetry_imports_nothing_else_of_the_package():
    for module, imported in GRAPH.items():
        if _in(module, "cruxcelery.telemetry"):
            assert {m for m in imported if not _in(m, "cruxcelery.telemetry")} == set(), module


def test_devtools_imports_only_telemetry():
    for module, imported in GRAPH.items():
        if _in(module, "cruxcelery.devtools"):
            assert {m for m in imported if not _in(m, "cruxcelery.devtools", "cruxcelery.telemetry")} == set(), module


def test_plug_ins_never_import_the_composition_root():
    for module, imported in GRAPH.items():
        if _in(module, *PLUG_INS):
            assert "cruxcelery.crux" not in imported and "cruxcelery" not in imported, module


def test_no_import_cycle_between_modules():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_no_module_imports_another_modules_private_names():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cruxcelery"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, f"{path.relative_to(PACKAGE)} imports {private} from {node.module}"


def test_no_module_is_over_400_lines():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_the_top_level_holds_at_most_twelve_modules():
    assert len([p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]) <= 12
